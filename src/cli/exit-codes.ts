// Exit codes of the command line. 78 is sysexits.h's EX_CONFIG: the systemd unit has
// RestartPreventExitStatus=78, so a bad config stops the service instead of restarting it every 5 s.
export const EXIT_OK = 0;
/** A runtime error: the port is taken, the database cannot be opened, a peer failed. Restarting may help. */
export const EXIT_FAILURE = 1;
/** The command line itself is wrong (unknown command or option, missing argument). */
export const EXIT_USAGE = 2;
/** The configuration, a device mapping or a file it names is wrong: fix it, restarting will not help. */
export const EXIT_CONFIG = 78;
