// `fieldgate passwd FILE USER`: asks for the password twice without echo on a terminal, or reads
// one line from stdin when it is piped (`printf 'secret\n' | fieldgate passwd FILE USER`).
import type { Readable, Writable } from 'node:stream';
import { addOrUpdateUser, usernameProblem, type AddUserResult } from './password-file.js';

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

/** Reads one line from a terminal in raw mode without echoing it. Ctrl-C or Ctrl-D on an empty line aborts. */
function readHiddenLine(io: PasswdIo, prompt: string): Promise<string> {
  const input = io.input;
  io.output.write(prompt);
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (error: Error | undefined) => {
      input.off('data', onData);
      input.setRawMode?.(false);
      input.pause();
      io.output.write('\n');
      if (error) reject(error);
      else resolve(line);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\u0003' || (ch === '\u0004' && line === '')) return finish(new PasswdAborted());
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else if (ch >= ' ') line += ch;
      }
    };
    input.setRawMode?.(true);
    input.on('data', onData);
    input.resume();
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
export async function runPasswdCommand(file: string, username: string, io: PasswdIo): Promise<AddUserResult> {
  const problem = usernameProblem(username);
  if (problem) throw new Error(`cannot add user: ${problem}`);
  let password: string;
  if (io.input.isTTY) {
    password = await readHiddenLine(io, 'Password: ');
    const again = await readHiddenLine(io, 'Reenter password: ');
    if (password !== again) throw new Error('the passwords do not match; nothing was changed');
  } else {
    password = await readFirstLine(io.input);
  }
  if (password === '') throw new Error('the password is empty; nothing was changed');
  const result = addOrUpdateUser(file, username, password);
  io.output.write(`${result.added ? 'added' : 'updated'} user "${username}" in ${file}${result.createdFile ? ' (new file, mode 0600)' : ''}\n`);
  return result;
}
