// Runs the real Mosquitto broker (Debian `mosquitto`) and mosquitto_pub for auth tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export interface RunningMosquitto {
  port: number;
  stop(): Promise<void>;
}

/** Starts mosquitto on 127.0.0.1 with a password file (and optional ACL file); waits until it accepts connections. */
export async function startMosquitto(dir: string, options: { passwordFile: string; aclFile?: string }): Promise<RunningMosquitto> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous false',
    `password_file ${options.passwordFile}`,
    ...(options.aclFile ? [`acl_file ${options.aclFile}`] : []),
    'persistence false',
    'log_dest stderr',
  ];
  // As root, Mosquitto drops to the "mosquitto" user, which could not read a 0600 file owned by root.
  if (process.getuid?.() === 0) lines.push('user root');
  writeFileSync(conf, lines.join('\n') + '\n');
  const child: ChildProcess = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`mosquitto did not listen within 15 s: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export interface PubResult { code: number | null; output: string }

/** One mosquitto_pub connect+publish, bounded by a timeout; exit code 0 means the broker accepted the credentials. */
export function mosquittoPub(port: number, username: string, password: string, topic = 'test/auth', extraArgs: string[] = []): Promise<PubResult> {
  return new Promise((resolve) => {
    const args = ['-h', '127.0.0.1', '-p', String(port), '-u', username, '-P', password, '-t', topic, '-m', 'x', '-q', '1', ...extraArgs];
    const child = spawn('mosquitto_pub', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, output }); }); // close: all output read
  });
}
