// The management API's topic namespace: fieldgate/<gatewayId>/{request,response,state}/…
export interface ManagementTopics {
  base: string;
  /** Filter the management part subscribes to. */
  requests: string;
  requestPrefix: string;
  response(action: string): string;
  state(name: 'info' | 'parts' | 'devices' | 'bridges'): string;
}

export function managementTopics(gatewayId: string): ManagementTopics {
  const base = `fieldgate/${gatewayId}`;
  return {
    base,
    requests: `${base}/request/#`,
    requestPrefix: `${base}/request/`,
    response: (action) => `${base}/response/${action}`,
    state: (name) => `${base}/state/${name}`,
  };
}
