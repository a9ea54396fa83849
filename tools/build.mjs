// Builds every project with tsc, dependencies first (the admin console's tsconfig only type-checks: Vite bundles it
// afterwards into apps/admin-console/dist, the static files the admin listener serves at `/`). Each project resolves the others through npm
// workspaces (node_modules/@keyhold/* -> their dist/), so the order below is the dependency order.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export const PROJECTS = [
  'libs/metrics',
  'libs/contracts',
  'libs/crypto-core',
  'libs/key-lifecycle',
  'libs/auth',
  'libs/client-sdk',
  'apps/k8s-kms-plugin',
  'apps/kmsctl',
  'migrations',
  'apps/kms-server',
  'apps/admin-console',
];

const clean = process.argv.includes('--clean');
for (const project of PROJECTS) {
  if (clean) rmSync(`${project}/dist`, { recursive: true, force: true });
  const result = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `${project}/tsconfig.json`], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error(`build failed in ${project}`);
    process.exit(result.status ?? 1);
  }
}

const vite = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', 'apps/admin-console'], { stdio: 'inherit' });
if (vite.status !== 0) {
  console.error('build failed in apps/admin-console (vite)');
  process.exit(vite.status ?? 1);
}
