// The help texts: `fieldgate --help` shows every command, `fieldgate COMMAND --help` one of them.
import { VERSION } from '../version.js';

export const COMMANDS = ['run', 'check', 'probe', 'passwd', 'schema'] as const;
export type Command = (typeof COMMANDS)[number];

const COMMAND_HELP: Record<Command, string> = {
  run: `  fieldgate run [--config FILE] [--host H] [--port N] [--data DIR] [--log-level L]
      Run the gateway. Without --config: broker on 127.0.0.1:1883, data in ./data,
      and a built-in simulated energy meter so readings flow at once. SIGTERM/SIGINT stop
      gracefully; SIGHUP reloads the password file, ACL, TLS certificates and device mappings.
      --config, -c FILE   the gateway config (JSON); paths in it are relative to it.
                          Default: $FIELDGATE_CONFIG, else the embedded default
      --host H, --port N  the plain MQTT listener (overrides broker.host and broker.port)
      --data DIR          the data directory (overrides broker.dataDir)
      --log-level L       fatal, error, warn, info, debug, trace or silent
`,
  check: `  fieldgate check [--config FILE] [--points]
      Validate the config, every device mapping and every file it names; print what would run
      (with --points: every point, its wire address, decoding and topic). --config as for run.
`,
  probe: `  fieldgate probe (--host H [--port 502] | --serial PATH [--baud 9600] [--parity none]
                   | --gateway mqtt://HOST:PORT --bus ID [-u USER -P PASSWORD] [--gateway-id ID])
                  [--unit 1] [--table holding|input] --address A [--count 4] [--timeout 1000]
                  [--expect VALUE]
      Read registers once and show them decoded as every type and byte order (addresses are
      0-based wire addresses: data-sheet register 30001 is --table input --address 0).
      --expect VALUE shows only the decodings within 10% of VALUE (what the meter's display shows).
      --gateway asks a running gateway (its management API) to read on its bus ID, queued with its
      polls: safe while it polls that bus (never two masters on one line).
`,
  passwd: `  fieldgate passwd [-c] [-b] FILE USER [PASSWORD]  |  fieldgate passwd -D FILE USER
      Add or update a user in a Mosquitto-format password file ($7$ PBKDF2-SHA512). Asks twice
      without echo; -b takes the password from the command line (visible in the process list);
      -c creates a new file, replacing an existing one; -D deletes the user.
`,
  schema: `  fieldgate schema [--out DIR]
      Write JSON Schemas of the gateway config and of device mappings (for editors).
`,
};

const EXIT_CODES = 'Exit codes: 0 fine, 1 runtime error, 2 usage error, 78 configuration error (EX_CONFIG).\n';

export const HELP = `fieldgate ${VERSION} — MQTT edge gateway: local broker, Modbus/serial device adapters, cloud bridge

Usage:
${COMMANDS.map((c) => COMMAND_HELP[c]).join('')}  fieldgate COMMAND --help | fieldgate --help | --version

${EXIT_CODES}`;

export function commandHelp(command: Command): string {
  return `Usage:\n${COMMAND_HELP[command]}\n${EXIT_CODES}`;
}

/** `-h`/`--help` anywhere before a `--` asks for the command's help. */
export function wantsHelp(args: string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}
