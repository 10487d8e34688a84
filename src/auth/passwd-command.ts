// `fieldgate passwd FILE USER`: asks for the password twice without echo on a terminal, or reads
// one line from stdin when it is piped (`printf 'secret\n' | fieldgate passwd FILE USER`).
import type { Readable, Writable } from 'node:stream';
import { addOrUpdateUser, usernameProblem, type AddUserResult } from './password-file.js';

/** Below this many characters `passwd` warns (and still writes: the choice is the administrator's). */
export const SHORT_PASSWORD = 8;

export function shortPasswordWarning(password: string): string | undefined {
  const length = [...password].length;
  if (length >= SHORT_PASSWORD) return undefined;
  return `warning: the password has only ${length} character${length === 1 ? '' : 's'}: anyone on the network can guess it quickly (${SHORT_PASSWORD} or more recommended)`;
}

export interface PasswdIo {
  input: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  /** Prompts and messages (stderr, so stdout stays clean for scripts). */
  output: Writable;
}

export class PasswdAborted extends Error {
  constructor() {
    super('aborted');
    this.name = 'PasswdAborted';
  }
}

/**
 * Reads one line per prompt from a terminal without echo. Raw mode is switched on before the first
 * prompt and stays on until the last answer, so nothing typed after a prompt is ever echoed.
 * Ctrl-C, or Ctrl-D on an empty line, aborts.
 */
function readHiddenLines(io: PasswdIo, prompts: string[]): Promise<string[]> {
  const input = io.input;
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let line = '';
    const finish = (error: Error | undefined) => {
      input.off('data', onData);
      input.setRawMode?.(false);
      input.pause();
      if (error) {
        io.output.write('\n');
        reject(error);
      } else {
        resolve(lines);
      }
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          lines.push(line);
          line = '';
          io.output.write('\n');
          if (lines.length === prompts.length) return finish(undefined);
          io.output.write(prompts[lines.length]!);
        } else if (ch === '\u0003' || (ch === '\u0004' && line === '')) {
          return finish(new PasswdAborted());
        } else if (ch === '\u007f' || ch === '\b') {
          line = [...line].slice(0, -1).join('');
        } else if (ch >= ' ') {
          line += ch;
        }
      }
    };
    input.setRawMode?.(true);
    input.on('data', onData);
    input.resume();
    io.output.write(prompts[0]!);
  });
}

/** Reads the first line of a piped stdin (without its line ending). */
function readFirstLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = () => {
      input.off('data', onData);
      input.off('end', done);
      input.off('error', reject);
      input.pause();
      resolve(text.split(/\r?\n/, 1)[0] ?? '');
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      if (/\r?\n/.test(text)) done();
    };
    input.on('data', onData);
    input.once('end', done);
    input.once('error', reject);
    input.resume();
  });
}

/** Asks for (or reads) the password and adds or updates the user. Errors say what to do. */
export async function runPasswdCommand(file: string, username: string, io: PasswdIo, options: { replaceFile?: boolean } = {}): Promise<AddUserResult> {
  const problem = usernameProblem(username);
  if (problem) throw new Error(`cannot add user: ${problem}`);
  let password: string;
  if (io.input.isTTY) {
    const [first, again] = await readHiddenLines(io, ['Password: ', 'Reenter password: ']);
    password = first!;
    if (password !== again) throw new Error('the passwords do not match; nothing was changed');
  } else {
    password = await readFirstLine(io.input);
  }
  if (password === '') throw new Error('the password is empty; nothing was changed');
  const warning = shortPasswordWarning(password);
  if (warning) io.output.write(`${warning}\n`);
  const result = addOrUpdateUser(file, username, password, { replaceFile: options.replaceFile });
  io.output.write(`${describeAddUser(result, username, file)}\n`);
  return result;
}

export function describeAddUser(result: AddUserResult, username: string, file: string): string {
  const note = result.createdFile ? ' (new file, mode 0600)' : result.replacedFile ? ' (a new file: the users it had are gone)' : '';
  return `${result.added ? 'added' : 'updated'} user "${username}" in ${file}${note}`;
}
