// Mosquitto password files: `user:$7$<iterations>$<salt b64>$<hash b64>` (PBKDF2-HMAC-SHA512, the
// Mosquitto 2 default) and the older `user:$6$<salt b64>$<hash b64>` (SHA-512 of password || salt).
// A file written by `mosquitto_passwd` works here, and a file written here works in Mosquitto.
import { createHash, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Mosquitto's defaults (mosquitto_passwd): 101 iterations, 12-byte salt, 64-byte SHA-512 output. */
export const DEFAULT_ITERATIONS = 101;
export const SALT_BYTES = 12;
const HASH_BYTES = 64;
/** Refuse absurd iteration counts: verification is synchronous and runs on every CONNECT. */
export const MAX_ITERATIONS = 1_000_000;

export type PasswordHash =
  | { kind: 'pbkdf2-sha512'; iterations: number; salt: Buffer; hash: Buffer }
  | { kind: 'sha512'; salt: Buffer; hash: Buffer };

export interface PasswordEntry {
  username: string;
  hash: PasswordHash;
  /** 1-based line in the file. */
  line: number;
}

export class PasswordFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(line === undefined ? `${file}: ${problem}` : `${file}:${line}: ${problem}`);
    this.name = 'PasswordFileError';
  }
}

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string, what: string): Buffer {
  if (!base64Pattern.test(text) || text.length % 4 !== 0) throw new Error(`${what} is not valid base64`);
  return Buffer.from(text, 'base64');
}

/** Parses the part after `user:`. Throws an Error saying what is wrong. */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.split('$');
  // A hashed field starts with "$", so parts[0] is empty.
  if (parts[0] !== '' || parts.length < 4) {
    throw new Error('password is not hashed (expected "$7$…" from mosquitto_passwd; plain-text passwords are not accepted)');
  }
  if (parts[1] === '7') {
    if (parts.length !== 5) throw new Error('a "$7$" hash needs 4 fields: $7$<iterations>$<salt>$<hash>');
    const [, , iterationsText, saltText, hashText] = parts as [string, string, string, string, string];
    if (!/^[0-9]+$/.test(iterationsText)) throw new Error(`iterations "${iterationsText}" is not a whole number`);
    const iterations = Number(iterationsText);
    if (iterations < 1 || iterations > MAX_ITERATIONS) throw new Error(`iterations ${iterations} is outside 1…${MAX_ITERATIONS}`);
    const salt = decodeBase64(saltText, 'salt');
    const hash = decodeBase64(hashText, 'hash');
    if (hash.length !== HASH_BYTES) throw new Error(`hash is ${hash.length} bytes, expected ${HASH_BYTES}`);
    return { kind: 'pbkdf2-sha512', iterations, salt, hash };
  }
  if (parts[1] === '6') {
    if (parts.length !== 4) throw new Error('a "$6$" hash needs 3 fields: $6$<salt>$<hash>');
    const salt = decodeBase64(parts[2]!, 'salt');
    const hash = decodeBase64(parts[3]!, 'hash');
    if (hash.length !== HASH_BYTES) throw new Error(`hash is ${hash.length} bytes, expected ${HASH_BYTES}`);
    return { kind: 'sha512', salt, hash };
  }
  throw new Error(`unknown hash type "$${parts[1]}$" (supported: $7$ PBKDF2-SHA512, $6$ SHA-512)`);
}

/** Checks a username as mosquitto_passwd does: not empty, no ":" and no control characters. */
export function usernameProblem(username: string): string | undefined {
  if (username.length === 0) return 'the username is empty';
  if (Buffer.byteLength(username) > 65535) return 'the username is longer than 65535 bytes';
  if (username.includes(':')) return 'the username must not contain ":"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(username)) return 'the username must not contain control characters';
  if (username.trim() !== username) return 'the username must not start or end with blanks';
  return undefined;
}

/** Splits a line the way Mosquitto does: the name up to the first ":", the hash up to the next one, both trimmed. */
function splitLine(raw: string): { username: string; field: string } | undefined {
  const colon = raw.indexOf(':');
  if (colon < 0) return undefined;
  const username = raw.slice(0, colon).trim();
  const rest = raw.slice(colon + 1);
  const nextColon = rest.indexOf(':');
  const field = (nextColon < 0 ? rest : rest.slice(0, nextColon)).trim();
  return { username, field };
}

function isSkippable(raw: string): boolean {
  const trimmed = raw.trim();
  return trimmed === '' || trimmed.startsWith('#');
}

/** Parses a whole password file; every problem is reported with its line number (the first one throws). */
export function parsePasswordFile(text: string, file = 'password file'): Map<string, PasswordEntry> {
  const entries = new Map<string, PasswordEntry>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (isSkippable(raw)) return;
    const split = splitLine(raw);
    if (!split || split.username === '' || split.field === '') {
      throw new PasswordFileError(file, line, 'expected "username:$7$…" (as written by mosquitto_passwd or fieldgate passwd)');
    }
    let hash: PasswordHash;
    try {
      hash = parsePasswordHash(split.field);
    } catch (err) {
      throw new PasswordFileError(file, line, `user "${split.username}": ${(err as Error).message}`);
    }
    const earlier = entries.get(split.username);
    if (earlier) {
      throw new PasswordFileError(file, line, `user "${split.username}" is already defined on line ${earlier.line}; remove one of them`);
    }
    entries.set(split.username, { username: split.username, hash, line });
  });
  return entries;
}

/** Reads and parses a password file. Errors name the file (and line). */
export function readPasswordFile(file: string): Map<string, PasswordEntry> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix = code === 'ENOENT' ? `: the file does not exist; create it with: fieldgate passwd -c ${file} USER` : '';
    throw new PasswordFileError(file, undefined, `cannot read (${code ?? (err as Error).message})${fix}`);
  }
  return parsePasswordFile(text, file);
}

function digest(hash: PasswordHash, password: Buffer): Buffer {
  if (hash.kind === 'pbkdf2-sha512') return pbkdf2Sync(password, hash.salt, hash.iterations, HASH_BYTES, 'sha512');
  return createHash('sha512').update(password).update(hash.salt).digest();
}

function toBuffer(password: string | Buffer): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

/** Constant-time check of a password against a stored hash. */
export function verifyPassword(hash: PasswordHash, password: string | Buffer): boolean {
  const computed = digest(hash, toBuffer(password));
  return computed.length === hash.hash.length && timingSafeEqual(computed, hash.hash);
}

// Used when the user does not exist, so that a miss costs about as much as a wrong password.
const decoyHash: PasswordHash = {
  kind: 'pbkdf2-sha512',
  iterations: DEFAULT_ITERATIONS,
  salt: Buffer.alloc(SALT_BYTES, 1),
  hash: Buffer.alloc(HASH_BYTES, 0),
};

/** Verifies `username`/`password` against parsed entries; unknown users cost as much as wrong passwords. */
export function checkCredentials(entries: ReadonlyMap<string, PasswordEntry>, username: string, password: string | Buffer): boolean {
  const entry = entries.get(username);
  if (!entry) {
    verifyPassword(decoyHash, password);
    return false;
  }
  return verifyPassword(entry.hash, password);
}

/** A new `$7$` hash field (without the username), as mosquitto_passwd writes it. */
export function hashPassword(password: string | Buffer, options: { iterations?: number; salt?: Buffer } = {}): string {
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new Error(`iterations must be a whole number in 1…${MAX_ITERATIONS}`);
  }
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const hash = pbkdf2Sync(toBuffer(password), salt, iterations, HASH_BYTES, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** One password-file line (without the newline). */
export function formatPasswordLine(username: string, password: string | Buffer, options: { iterations?: number } = {}): string {
  const problem = usernameProblem(username);
  if (problem) throw new Error(problem);
  return `${username}:${hashPassword(password, options)}`;
}

export interface AddUserResult {
  /** True when the user was new, false when an existing line was replaced. */
  added: boolean;
  /** True when the file did not exist before. */
  createdFile: boolean;
  /** True when an existing file was replaced by one with only this user (replaceFile). */
  replacedFile: boolean;
}

/**
 * Adds a user or replaces their password (`fieldgate passwd FILE USER`). Other lines, comments
 * included, are kept as they are. The file is replaced atomically (temporary file + rename); a new
 * file gets mode 0600, an existing one keeps its owner and at most 0640. An existing file that does
 * not parse is left untouched and the error is thrown.
 */
export function addOrUpdateUser(file: string, username: string, password: string | Buffer, options: { iterations?: number; replaceFile?: boolean } = {}): AddUserResult {
  const problem = usernameProblem(username);
  if (problem) throw new Error(`cannot add user: ${problem}`);
  if (toBuffer(password).length === 0) throw new Error('cannot add user: the password is empty');
  if (toBuffer(password).length > 65535) throw new Error('cannot add user: the password is longer than 65535 bytes');

  // replaceFile (`passwd -c`, as mosquitto_passwd -c): a new file with this user only; an existing one keeps its owner and mode.
  const createdFile = !existsSync(file);
  const replacedFile = !createdFile && options.replaceFile === true;
  const text = createdFile || replacedFile ? '' : readFileSync(file, 'utf8');
  const entries = parsePasswordFile(text, file);
  const newLine = formatPasswordLine(username, password, options);

  const lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  const existing = entries.get(username);
  if (existing) lines[existing.line - 1] = newLine;
  else lines.push(newLine);

  writeFileAtomically(file, lines.join('\n') + '\n');
  return { added: !existing, createdFile, replacedFile };
}

/**
 * Removes a user (`fieldgate passwd -D FILE USER`, as mosquitto_passwd -D): other lines stay as they
 * are. Throws when the file does not parse or the user is not in it (nothing is changed then).
 */
export function deleteUser(file: string, username: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was changed`);
  }
  const entry = parsePasswordFile(text, file).get(username);
  if (!entry) throw new Error(`user "${username}" is not in ${file}; nothing was changed`);
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  lines.splice(entry.line - 1, 1);
  writeFileAtomically(file, lines.length === 0 ? '' : lines.join('\n') + '\n');
}

function writeFileAtomically(file: string, content: string): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const previous = existsSync(file) ? statSync(file) : undefined;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  try {
    // New files are 0600. An existing file keeps its mode minus any group write or world bits, so a
    // root:fieldgate 0640 file stays readable by the service after root edits it.
    chmodSync(temp, previous ? previous.mode & 0o640 : 0o600);
    if (previous && typeof process.getuid === 'function' && process.getuid() === 0) {
      // Keep the owner (e.g. fieldgate:fieldgate) when root edits the file for the service.
      chownSync(temp, previous.uid, previous.gid);
    }
    renameSync(temp, file);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw err;
  }
  fsyncDirectory(dirname(file));
}

function fsyncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every file system allows fsync on a directory; the rename itself is still atomic.
  }
}
