import { parseArgs } from 'node:util';
import { KeyholdClient } from '@keyhold/client-sdk';
import { loadConfig } from './config';
import { deriveKeyId } from './key-id';
import { KubeApiError, KubeClient, loadKubeconfig } from './kube-client';

const HELP = `keyhold-kms-plugin rewrite-secrets: move every Secret to the current key_id after a rotation

Usage: keyhold-kms-plugin rewrite-secrets --kubeconfig FILE [options]

  --kubeconfig FILE         admin kubeconfig (client certificate or token); required
  --context NAME            kubeconfig context (default: current-context)
  --namespace NS            only this namespace (default: all)
  --page-size N             Secrets per list page (default 250)
  --concurrency N           updates in flight (default 4)
  --buffer-minutes M        the "M" of the 3 + N + M minutes wait after a rotation (default 5)
  --force                   skip the wait check (the apiserver may still write with the old key_id)

Reads the Keyhold key the plugin uses (KEYHOLD_URL, KEYHOLD_CA_FILE, KEYHOLD_CERT_FILE, KEYHOLD_KEY_FILE,
KEYHOLD_KMS_KEY, KEYHOLD_KMS_REFRESH_INTERVAL_SECONDS, as for the plugin), refuses to run until the current
primary version is at least 3 + N + M minutes old (N = the refresh interval), then lists every Secret and
writes each back unchanged (a no-op update the apiserver re-encrypts under its current key_id), retrying
on conflicts and skipping Secrets deleted meanwhile. It prints progress, and only when every Secret was
rewritten, says which Keyhold versions Secrets no longer need.
Exit codes: 0 done, 1 some Secrets failed, 2 usage, 3 too early after the rotation.
`;

interface SecretItem {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  [k: string]: unknown;
}
interface SecretList {
  items: SecretItem[];
  metadata?: { continue?: string; remainingItemCount?: number };
}

export interface RewriteOptions {
  kube: KubeClient;
  namespace?: string;
  pageSize: number;
  concurrency: number;
  progress: (line: string) => void;
}

export interface RewriteResult {
  rewritten: number;
  skipped: number;
  failed: Array<{ namespace: string; name: string; error: string }>;
}

/** Writes every Secret back unchanged, page by page; conflicts are retried with a fresh read. */
export async function rewriteAllSecrets(options: RewriteOptions): Promise<RewriteResult> {
  const { kube, namespace, pageSize, concurrency, progress } = options;
  const result: RewriteResult = { rewritten: 0, skipped: 0, failed: [] };
  const base = namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets` : '/api/v1/secrets';
  let cont: string | undefined;
  let page = 0;
  let seen = 0;
  do {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (cont) query.set('continue', cont);
    const list = await kube.request<SecretList>('GET', `${base}?${query.toString()}`);
    page += 1;
    const items = list.items ?? [];
    const remaining = list.metadata?.remainingItemCount;
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++];
        const outcome = await rewriteOne(kube, item);
        if (outcome === 'rewritten') result.rewritten += 1;
        else if (outcome === 'skipped') result.skipped += 1;
        else result.failed.push({ namespace: item.metadata.namespace, name: item.metadata.name, error: outcome.error });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
    seen += items.length;
    cont = list.metadata?.continue || undefined;
    const total = remaining !== undefined && cont ? ` of about ${seen + remaining}` : cont ? '' : ` of ${seen}`;
    progress(
      `page ${page}: ${seen}${total} Secrets processed: ${result.rewritten} rewritten, ${result.skipped} gone meanwhile, ${result.failed.length} failed`,
    );
  } while (cont);
  return result;
}

async function rewriteOne(kube: KubeClient, item: SecretItem): Promise<'rewritten' | 'skipped' | { error: string }> {
  const path = `/api/v1/namespaces/${encodeURIComponent(item.metadata.namespace)}/secrets/${encodeURIComponent(item.metadata.name)}`;
  let current: SecretItem = { apiVersion: 'v1', kind: 'Secret', ...item };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await kube.request('PUT', path, current);
      return 'rewritten';
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return 'skipped';
      if (error instanceof KubeApiError && error.status === 409) {
        // Someone changed it since the list: their write already re-encrypted it, but read and write again
        // rather than guess.
        try {
          current = { apiVersion: 'v1', kind: 'Secret', ...(await kube.request<SecretItem>('GET', path)) };
          continue;
        } catch (readError) {
          if (readError instanceof KubeApiError && readError.status === 404) return 'skipped';
          return { error: (readError as Error).message };
        }
      }
      return { error: (error as Error).message };
    }
  }
  return { error: 'still conflicting after 5 attempts' };
}

export interface CommandIo {
  env: NodeJS.ProcessEnv;
  now: () => number;
  out: (line: string) => void;
  progress: (line: string) => void;
}

const PROCESS_IO: CommandIo = {
  env: process.env,
  now: Date.now,
  out: (line) => process.stdout.write(`${line}\n`),
  progress: (line) => process.stderr.write(`[rewrite-secrets] ${line}\n`),
};

export async function rewriteSecretsCommand(argv: string[], io: Partial<CommandIo> = {}): Promise<number> {
  const { env, now, out, progress } = { ...PROCESS_IO, ...io };
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string' },
        'page-size': { type: 'string', default: '250' },
        concurrency: { type: 'string', default: '4' },
        'buffer-minutes': { type: 'string', default: '5' },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (error) {
    out(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    out(HELP);
    return 0;
  }
  const pageSize = Number(args['page-size']);
  const concurrency = Number(args.concurrency);
  const bufferMinutes = Number(args['buffer-minutes']);
  if (!args.kubeconfig || !(pageSize >= 1) || !(concurrency >= 1) || !(bufferMinutes >= 0)) {
    out(`--kubeconfig is required; --page-size, --concurrency and --buffer-minutes must be positive\n\n${HELP}`);
    return 2;
  }
  const config = loadConfig({ KEYHOLD_KMS_HEALTH_ADDR: 'off', ...env });
  const keyhold = KeyholdClient.fromFiles({ baseUrl: config.keyholdUrl, caFile: config.caFile, certFile: config.certFile, keyFile: config.keyFile });
  const kube = new KubeClient(loadKubeconfig(args.kubeconfig, args.context));
  try {
    const key = await keyhold.getKey(config.keyName);
    const primary = key.versions.find((v) => v.version === key.primaryVersion);
    if (!primary) throw new Error(`Keyhold key ${key.name} lists no primary version`);
    const keyId = deriveKeyId(key, primary, config.keyIdSuffix);
    const waitMs = (3 + bufferMinutes) * 60_000 + config.refreshIntervalMs;
    const safeAt = Date.parse(primary.createdAt) + waitMs;
    out(`Keyhold key ${key.name}: primary version ${primary.version} since ${primary.createdAt}, key_id ${keyId}`);
    if (now() < safeAt && !args.force) {
      out(
        `Too early: kube-apiserver may still be writing with the previous key_id until ${new Date(safeAt).toISOString()} ` +
          `(3 min coasting + ${config.refreshIntervalMs / 1000}s plugin refresh + ${bufferMinutes} min buffer after the rotation). ` +
          'Run again then, or pass --force.',
      );
      return 3;
    }
    const started = now();
    const result = await rewriteAllSecrets({ kube, ...(args.namespace ? { namespace: args.namespace } : {}), pageSize, concurrency, progress });
    const seconds = ((now() - started) / 1000).toFixed(1);
    out(`Rewrote ${result.rewritten} Secrets in ${seconds}s (${result.skipped} deleted meanwhile, ${result.failed.length} failed).`);
    if (result.failed.length > 0) {
      for (const f of result.failed.slice(0, 20)) out(`  failed: ${f.namespace}/${f.name}: ${f.error}`);
      out('Some Secrets were not rewritten: do NOT retire older Keyhold key versions yet; fix the errors and run again.');
      return 1;
    }
    const older = key.versions.filter((v) => v.version < primary.version && v.state !== 'destroyed').map((v) => v.version);
    out(`Every Secret${args.namespace ? ` in namespace ${args.namespace}` : ''} is now stored under key_id ${keyId} (Keyhold key ${key.name} version ${primary.version}).`);
    if (older.length > 0 && !args.namespace) {
      out(
        `Versions ${older.join(', ')} of ${key.name} are no longer needed by Secrets. If no other resource type is encrypted by this ` +
          `provider (or those were rewritten too), retire them: PATCH /v1/keys/${key.name} {"minDecryptionVersion": ${primary.version}}, ` +
          'then schedule their destruction when you are sure (docs/kubernetes.md, "Rotation").',
      );
    }
    return 0;
  } finally {
    kube.close();
    await keyhold.close();
  }
}
