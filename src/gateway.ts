// The gateway lives in src/gateway/ (a controller and one file per part); this path stays for its callers.
export * from './gateway/index.js';
