import type { OpenListener } from '../listeners.js';

/** A ready mosquitto_sub line for the first (plain MQTT) listener. */
export function watchCommand(listener: OpenListener, hasPasswordFile: boolean): string {
  const host = listener.host === '0.0.0.0' || listener.host === '::' ? '127.0.0.1' : listener.host;
  const credentials = listener.allowAnonymous || !hasPasswordFile ? '' : ' -u USER -P PASSWORD';
  return `mosquitto_sub -h ${host} -p ${listener.port}${credentials} -t 'fieldgate/#' -v`;
}
