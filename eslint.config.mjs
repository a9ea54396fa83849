// ESLint flat config for the Keyhold monorepo.
//
// What enforces what (docs/design: "Libraries and who may import whom", style-models §8.1):
//   * @nx/enforce-module-boundaries (error): which workspace project may import which, by the
//     `tags` in each project.json (DEP_CONSTRAINTS below); libs never import apps; no relative or
//     absolute imports across projects; npm packages per project via bannedExternalImports.
//   * @typescript-eslint/no-restricted-imports (error): things the Nx rule cannot see or cannot
//     express per folder: Node built-ins (`node:crypto` / `crypto`, only in crypto-core and tests),
//     deep imports `@keyhold/x/...`, the migration ban on key-material libs, and client-sdk in
//     kms-server's production code (its tests may use it).
//   * no-restricted-globals: the WebCrypto global `crypto` outside crypto-core and tests.
//   * no-console (error) in libs/**: libraries log through the logger they are given.
//
// Kept fast on purpose: typescript-eslint "recommended", not the type-aware presets.
import nxEslintPlugin from '@nx/eslint-plugin';
import { createProjectGraphAsync } from '@nx/devkit';
import prettierConfig from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

// The Nx rule reads the project graph from Nx's cache (.nx/workspace-data) and silently SKIPS
// itself when no cache exists (a fresh clone, CI). Build the graph here, once per ESLint run, so the
// rule always runs and always sees the current tags. No daemon (nx.json: useDaemonProcess false).
process.env.NX_DAEMON ??= 'false';
await createProjectGraphAsync({ exitOnError: true });

const TS_FILES = ['**/*.ts', '**/*.tsx', '**/*.mts', '**/*.cts'];
const JS_FILES = ['**/*.js', '**/*.mjs', '**/*.cjs'];
const TEST_FILES = ['**/*.spec.ts', '**/*.e2e-spec.ts', '**/test/**/*.ts'];

// ---------------------------------------------------------------------------------------------
// npm packages, grouped by who may use them (Nx bannedExternalImports globs: `*` = anything).
const DB = ['typeorm', 'typeorm/*', 'pg', 'pg/*', 'pg-*']; // kms-server, migrations
const NEST = ['@nestjs/*', 'passport', 'passport/*', 'passport-*']; // auth, kms-server
const AUTH_SECRETS = ['argon2', 'argon2/*', '@simplewebauthn/*']; // auth, kms-server
const ZOD = ['zod', 'zod/*']; // contracts, and kms-server's validation pipe
// The admin console will run the browser half of WebAuthn: it may use @simplewebauthn/browser,
// never the server half.
const AUTH_SECRETS_CLIENT_APP = ['argon2', 'argon2/*', '@simplewebauthn/server', '@simplewebauthn/server/*'];

// Workspace edges (tags are in each project.json). `[]` means: no workspace project at all.
const DEP_CONSTRAINTS = [
  {
    sourceTag: 'type:contracts', // libs/contracts: a leaf
    onlyDependOnLibsWithTags: [],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS],
  },
  {
    sourceTag: 'type:crypto', // libs/crypto-core: a leaf, pure functions over node:crypto
    onlyDependOnLibsWithTags: [],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS, ...ZOD],
  },
  {
    sourceTag: 'type:metrics', // libs/metrics: the Prometheus registry, a leaf over node:perf_hooks
    onlyDependOnLibsWithTags: [],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS, ...ZOD],
  },
  {
    sourceTag: 'type:domain', // libs/key-lifecycle: framework-free
    onlyDependOnLibsWithTags: ['type:crypto', 'type:contracts'],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS, ...ZOD],
  },
  {
    sourceTag: 'type:infra', // libs/auth: Nest-aware
    onlyDependOnLibsWithTags: ['type:contracts', 'type:crypto'],
    bannedExternalImports: [...DB, ...ZOD],
  },
  {
    sourceTag: 'type:sdk', // libs/client-sdk
    onlyDependOnLibsWithTags: ['type:contracts'],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS, ...ZOD],
  },
  {
    sourceTag: 'type:migrations', // migrations/: TypeORM classes, nothing of ours
    onlyDependOnLibsWithTags: [],
    bannedExternalImports: [...NEST, ...AUTH_SECRETS, ...ZOD],
  },
  {
    // apps/kms-server: every lib. client-sdk only from its tests: see SERVER_APP_SRC below.
    allSourceTags: ['type:app', 'scope:server'],
    onlyDependOnLibsWithTags: [
      'type:contracts',
      'type:crypto',
      'type:domain',
      'type:infra',
      'type:migrations',
      'type:sdk',
      'type:metrics',
    ],
    // zod is allowed here: the validation pipe (src/common/zod-body.pipe.ts) runs contracts' schemas.
    bannedExternalImports: [],
  },
  {
    // kmsctl: the SDK for the service plane; crypto-core for offline audit verification (hashes, Ed25519);
    // pg for reading the audit tables with a read-only role. Never the server's code.
    allSourceTags: ['type:app', 'scope:cli'],
    onlyDependOnLibsWithTags: ['type:contracts', 'type:sdk', 'type:crypto'],
    bannedExternalImports: [...NEST, ...AUTH_SECRETS_CLIENT_APP, 'typeorm', 'typeorm/*'],
  },
  {
    // admin-console, k8s-kms-plugin: reach the server only through the SDK (the plugin's metrics through libs/metrics).
    allSourceTags: ['type:app', 'scope:client'],
    onlyDependOnLibsWithTags: ['type:contracts', 'type:sdk', 'type:metrics'],
    bannedExternalImports: [...DB, ...NEST, ...AUTH_SECRETS_CLIENT_APP, ...ZOD],
  },
];

// ---------------------------------------------------------------------------------------------
// Import bans by folder. In flat config a later block REPLACES a rule's options, so every block
// below states its complete list, built from these pieces.
const DEEP_IMPORTS = {
  group: ['@keyhold/*/*'],
  message: "Import a workspace library by its name only (its src/index.ts is the public API), e.g. '@keyhold/contracts'.",
};
const NODE_CRYPTO = ['crypto', 'node:crypto'].map((name) => ({
  name,
  message: 'Only libs/crypto-core touches node:crypto (random ids, hashes, constant-time compares too). Use @keyhold/crypto-core.',
}));
const KEY_MATERIAL_LIBS = ['@keyhold/crypto-core', '@keyhold/key-lifecycle', '@keyhold/auth'].map((name) => ({
  name,
  message: 'A migration never handles key material. Re-wrapping data is a separately versioned job in kms-server.',
}));
const CLIENT_SDK_IN_SERVER = [
  {
    name: '@keyhold/client-sdk',
    message: "kms-server's own code never uses the client SDK; only its tests (test/**, *.spec.ts) may.",
  },
];

const restrictImports = (paths) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns: [DEEP_IMPORTS] }],
});
const CRYPTO_GLOBAL_BANNED = {
  'no-restricted-globals': [
    'error',
    { name: 'crypto', message: 'Only libs/crypto-core uses crypto (WebCrypto global included). Use @keyhold/crypto-core.' },
  ],
};
const CRYPTO_GLOBAL_ALLOWED = { 'no-restricted-globals': 'off' };

const CRYPTO_CORE = ['libs/crypto-core/**'];
const MIGRATIONS = ['migrations/**'];
const SERVER_APP = ['apps/kms-server/**'];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '.keyhold/**',
      '.nx/**',
      'apps/admin-console/dist/**',
      'coverage/**',
      'tmp/**',
      'test-output/**',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  // TypeScript (and our .mjs tools): typescript-eslint recommended (syntax only, no type information).
  ...tseslint.configs.recommended.map((config) => ({ ...config, files: [...TS_FILES, '**/*.mjs'] })),
  {
    files: TS_FILES,
    plugins: { '@nx': nxEslintPlugin },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allowCircularSelfDependency: false,
          allow: [],
          depConstraints: DEP_CONSTRAINTS,
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },

  // Import bans, from the general case to the exceptions (a later block wins).
  { files: TS_FILES, rules: { ...restrictImports(NODE_CRYPTO), ...CRYPTO_GLOBAL_BANNED } },
  { files: CRYPTO_CORE, rules: { ...restrictImports([]), ...CRYPTO_GLOBAL_ALLOWED } },
  { files: MIGRATIONS, rules: restrictImports([...NODE_CRYPTO, ...KEY_MATERIAL_LIBS]) },
  { files: SERVER_APP, rules: restrictImports([...NODE_CRYPTO, ...CLIENT_SDK_IN_SERVER]) },
  // The Kubernetes KMS plugin hashes non-secret key metadata into its key_id (and sha256(key_id) for its
  // metrics): only `createHash` from node:crypto, in this app alone. It never handles key material.
  {
    files: ['apps/k8s-kms-plugin/**'],
    rules: restrictImports([
      ...['crypto', 'node:crypto'].map((name) => ({
        name,
        allowImportNames: ['createHash'],
        message: 'The KMS plugin may hash metadata (createHash) and nothing else: key material stays in Keyhold.',
      })),
    ]),
  },
  // Tests may use node:crypto for setup (certificates, random inputs) and kms-server's tests the SDK.
  // Migration tests still never touch key-material libs.
  { files: TEST_FILES, rules: { ...restrictImports([]), ...CRYPTO_GLOBAL_ALLOWED } },
  {
    files: ['migrations/**/*.spec.ts', 'migrations/**/*.e2e-spec.ts', 'migrations/**/test/**/*.ts'],
    rules: restrictImports(KEY_MATERIAL_LIBS),
  },

  // Libraries log through the logger they are given, never the console.
  { files: ['libs/**'], rules: { 'no-console': 'error' } },

  // Plain JavaScript (tools/, this file): Node ESM scripts.
  {
    files: JS_FILES,
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },

  // Formatting belongs to Prettier, not ESLint: switch off any stylistic rule (keep last).
  prettierConfig,
);
