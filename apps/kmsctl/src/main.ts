#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { type AuditFilter, auditFilterSchema } from '@keyhold/contracts';
import { exportCommand, publicKeyCommand, verifyCommand } from './audit-commands';
import { UsageError } from './audit-source';
import { INIT_USAGE, initCommand } from './init-command';
import { UNSEAL_USAGE, unsealCommand } from './unseal-command';

const USAGE = `kmsctl: Keyhold's command line

  kmsctl audit verify   --public-key KEY.pem [--file EXPORT.jsonl[.gz] ...] [--database-url URL [--from-sequence N] [--to-sequence M]]
  kmsctl audit export   --database-url URL [--from ISO] [--to ISO] [--actor A] [--key K] [--operation O]
                        [--outcome success|refused|error] [--from-sequence N] [--to-sequence M] [--out FILE]
  kmsctl audit public-key --database-url URL [--out FILE]
${INIT_USAGE}
${UNSEAL_USAGE}

--database-url defaults to KEYHOLD_AUDIT_DATABASE_URL; a role with SELECT on the keyhold_audit_* tables is
enough (docs/audit.md). verify exits 0 when the chain is intact, 1 at the first broken link, 2 on bad usage.
Up to the head (no --to-sequence, or one past the last record), verify reads every signed checkpoint from
the start of the range: one whose record is missing means records were deleted (a tail, the head rewound),
and so does one in an export file. Records after the latest checkpoint are proven by the chain only.
After Keyhold pruned old records, verify starts at the latest signed prune and checks its signature.
Several --file are one chain in the order given (the archives of successive prunes, then an export of the
database): each must continue where the one before ends. With --database-url as well, the database's records
after the last file are verified last, the same way.
`;

const OPTIONS = {
  file: { type: 'string', multiple: true },
  'database-url': { type: 'string' },
  'public-key': { type: 'string' },
  out: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  actor: { type: 'string' },
  key: { type: 'string' },
  operation: { type: 'string' },
  outcome: { type: 'string' },
  'from-sequence': { type: 'string' },
  'to-sequence': { type: 'string' },
  url: { type: 'string' },
  cacert: { type: 'string' },
  status: { type: 'boolean' },
  shares: { type: 'string' },
  threshold: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[], io = { out: (line: string) => console.log(line), err: (line: string) => console.error(line) }): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (values.help || positionals.length === 0) {
      io.out(USAGE);
      return values.help ? 0 : 2;
    }
    const [group, command] = positionals;
    if (group === 'init' && positionals.length === 1) {
      return await initCommand({ shares: values.shares, threshold: values.threshold, out: values.out, json: values.json }, io);
    }
    if (group === 'unseal' && positionals.length === 1) return await unsealCommand({ url: values.url, cacert: values.cacert, status: values.status }, io);
    if (group !== 'audit' || positionals.length !== 2) throw new UsageError(`unknown command: ${positionals.join(' ')}`);
    const databaseUrl = values['database-url'] ?? process.env.KEYHOLD_AUDIT_DATABASE_URL;
    const parsed = auditFilterSchema.safeParse({
      from: values.from,
      to: values.to,
      actor: values.actor,
      key: values.key,
      operation: values.operation,
      outcome: values.outcome,
      fromSequence: values['from-sequence'],
      toSequence: values['to-sequence'],
    });
    if (!parsed.success) throw new UsageError(parsed.error.issues.map((issue) => `--${String(issue.path[0])}: ${issue.message}`).join('; '));
    const filter: AuditFilter = Object.fromEntries(Object.entries(parsed.data).filter(([, value]) => value !== undefined));
    switch (command) {
      case 'verify':
        return await verifyCommand(
          {
            files: values.file,
            databaseUrl,
            databaseAfterFiles: values['database-url'] !== undefined,
            publicKey: values['public-key'],
            fromSequence: filter.fromSequence,
            toSequence: filter.toSequence,
          },
          io,
        );
      case 'export':
        return await exportCommand({ databaseUrl, out: values.out, filter }, io);
      case 'public-key':
        return await publicKeyCommand({ databaseUrl, out: values.out }, io);
      default:
        throw new UsageError(`unknown command: audit ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`kmsctl: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    io.err(`kmsctl: ${(error as Error).message}`);
    return 2;
  }
}

if (require.main === module) {
  void run(process.argv.slice(2)).then((code) => process.exit(code));
}
