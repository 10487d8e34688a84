import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Generous for a slow or loaded CI machine: the waits inside tests (up to 30 s) then fail first,
    // with a message naming what they waited for, instead of a bare "timed out".
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
