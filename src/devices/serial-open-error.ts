// What to do about a serial port that will not open. serialport reports the OS error as text
// ("Error: Permission denied, cannot open /dev/ttyUSB0"); on a Pi the three usual causes each have
// one fix, so the log line says it.

const hints: Array<{ pattern: RegExp; hint: (path: string) => string }> = [
  {
    pattern: /permission denied|EACCES/i,
    hint: (path) =>
      `the user running fieldgate may not use ${path}: serial adapters belong to group dialout; add the user to it ` +
      `(sudo usermod -aG dialout <user>, then log in again; the systemd unit already sets SupplementaryGroups=dialout)`,
  },
  {
    pattern: /no such file or directory|ENOENT/i,
    hint: () => 'no such device: is the adapter plugged in? `ls -l /dev/serial/by-id/` lists the attached adapters by a name that does not change',
  },
  {
    pattern: /cannot lock port|resource temporarily unavailable|EBUSY|EAGAIN/i,
    hint: (path) => `another program has ${path} open (ModemManager, a serial console, a second fieldgate): \`fuser -v ${path}\` names it`,
  },
];

/** The message for a failed open: serialport's text plus the likely fix when the cause is a known one. */
export function describeSerialOpenError(path: string, message: string): string {
  // serialport's text already ends in ", cannot open <path>": said once is enough.
  const reason = message.replace(/^Error:?\s*/, '').replace(/,\s*cannot open \S+$/, '');
  const base = `cannot open ${path}: ${reason}`;
  const known = hints.find((h) => h.pattern.test(message));
  return known ? `${base} — ${known.hint(path)}` : base;
}
