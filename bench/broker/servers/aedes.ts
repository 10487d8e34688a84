// Aedes 1.x with its defaults (in-memory persistence) alone in a process, on a TCP listener.
// Prints {"port":N} on stdout once listening; SIGTERM closes it and exits.

import net from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as net.AddressInfo;
process.stdout.write(`${JSON.stringify({ port })}\n`);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  server.close();
  broker.close(() => process.exit(0));
});
