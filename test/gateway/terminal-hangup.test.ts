// `npm start` in a terminal that goes away (an SSH session that drops, a closed window): the kernel
// hangs up the terminal and sends SIGHUP. fieldgate reloads on SIGHUP (as Mosquitto does) and goes
// on; its log lines can no longer be written (EIO). Found by the 2nd README walkthrough: the gateway
// died of an unhandled 'error' event ("write EIO") at its next log line, a crash instead of either
// running on or stopping gracefully. The terminal is a real pty (python3's pty module), hung up by
// closing its master side, as the kernel does when the terminal emulator exits.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ensureBuilt, freePort, tempDir, waitFor } from './helpers.js';

const PYTHON = '/usr/bin/python3';

// Starts argv on a new pty, reads it until `ready` appears, prints {"pid": …} of the child, then
// closes the master: the terminal hangs up, and the child keeps running without it.
const PTY_RUNNER = `
import json, os, pty, select, sys, time
argv = json.loads(sys.argv[1]); ready = sys.argv[2].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b''; end = time.time() + 60
while ready not in out and time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try: out += os.read(fd, 65536)
        except OSError: break
sys.stdout.write(json.dumps({"pid": pid, "ready": ready in out, "output": out.decode(errors="replace")[-2000:]}) + "\\n")
sys.stdout.flush()
os.close(fd)
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startOnPty(args: string[]): Promise<{ pid: number; output: string }> {
  const runner = spawn(PYTHON, ['-c', PTY_RUNNER, JSON.stringify([process.execPath, BIN, ...args]), 'watch the readings'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  runner.stdout.on('data', (d: Buffer) => (text += d.toString()));
  await new Promise((resolve) => runner.on('close', resolve));
  const answer = JSON.parse(text) as { pid: number; ready: boolean; output: string };
  expect(answer.ready, answer.output).toBe(true);
  return answer;
}

describe('a terminal that hangs up under a running gateway', () => {
  const started: number[] = [];
  beforeAll(() => {
    ensureBuilt();
  }, 180_000);
  afterEach(async () => {
    for (const pid of started.splice(0)) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  for (const format of ['pretty (the default on a terminal)', 'json'] as const) {
    it(`keeps the gateway running and its broker answering, log format ${format}`, async () => {
      if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is needed for the pty`);
      const dir = tempDir('fieldgate-hangup-');
      const port = await freePort();
      const args = ['run', '--port', String(port), '--console-port', '0', '--data', path.join(dir, 'data')];
      if (format === 'json') {
        const config = path.join(dir, 'fieldgate.json');
        fs.writeFileSync(config, JSON.stringify({ broker: { host: '127.0.0.1', port, dataDir: 'data' }, demo: true, log: { format: 'json' } }));
        args.splice(1, 0, '--config', config);
      }
      const { pid } = await startOnPty(args);
      started.push(pid);
      // The hangup's SIGHUP reloads; then client connects, disconnects and device polls log lines
      // that cannot be written any more.
      for (let i = 0; i < 3; i++) {
        const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 10_000 });
        const reading = new Promise<string>((resolve) => client.on('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
        await client.subscribeAsync('fieldgate/demo-meter/voltage');
        expect(await reading).toMatch(/^fieldgate\/demo-meter\/voltage \d/);
        await client.endAsync();
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(alive(pid), 'the gateway died after its terminal hung up').toBe(true);
      // It still stops gracefully (the database committed: the process exits by itself).
      process.kill(pid, 'SIGTERM');
      await waitFor(() => !alive(pid), 'the gateway to exit after SIGTERM', 30_000);
    }, 120_000);
  }
});
