import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Grant } from '@keyhold/contracts';
import { type CertificateAndKey, createCertificateAuthority, issueCertificate } from '@keyhold/crypto-core';
import { createDevelopmentMasterKeyFile } from '../seal/master-key-files';
import { developmentPaths } from './keyhold-config';

export const OPERATOR_IDENTITY = 'spiffe://keyhold.local/operator';

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Makes everything a development start needs and that is not there yet: a local CA, a server certificate for
 * localhost, an operator client certificate, a development master key, and grants giving the operator
 * everything. Existing files are kept, so restarts keep their keys and certificates.
 */
export async function ensureDevelopmentEnvironment(home: string): Promise<{ created: string[] }> {
  const paths = developmentPaths(home);
  const created: string[] = [];
  mkdirSync(home, { recursive: true, mode: 0o700 });

  let ca: CertificateAndKey;
  if (existsSync(paths.caCert) && existsSync(paths.caKey)) {
    ca = { certificatePem: readFileSync(paths.caCert, 'utf8'), privateKeyPem: readFileSync(paths.caKey, 'utf8') };
  } else {
    ca = await createCertificateAuthority({ commonName: 'Keyhold development CA' });
    writeFileSync(paths.caCert, ca.certificatePem);
    writeSecret(paths.caKey, ca.privateKeyPem);
    created.push(paths.caCert);
  }
  if (!existsSync(paths.serverCert) || !existsSync(paths.serverKey)) {
    const server = await issueCertificate({
      issuer: ca,
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      usage: 'server',
    });
    writeFileSync(paths.serverCert, server.certificatePem);
    writeSecret(paths.serverKey, server.privateKeyPem);
    created.push(paths.serverCert);
  }
  if (!existsSync(paths.operatorCert) || !existsSync(paths.operatorKey)) {
    const operator = await issueCertificate({
      issuer: ca,
      commonName: 'keyhold-operator',
      uris: [OPERATOR_IDENTITY],
      usage: 'client',
    });
    writeFileSync(paths.operatorCert, operator.certificatePem);
    writeSecret(paths.operatorKey, operator.privateKeyPem);
    created.push(paths.operatorCert);
  }
  if (!existsSync(paths.masterKey)) {
    createDevelopmentMasterKeyFile(paths.masterKey);
    created.push(paths.masterKey);
  }
  if (!existsSync(paths.grants)) {
    const grants: { grants: Grant[] } = {
      grants: [
        {
          identity: OPERATOR_IDENTITY,
          keys: '*',
          operations: ['*'],
          description: 'development start-up: the operator certificate may do everything',
        },
      ],
    };
    writeFileSync(paths.grants, `${JSON.stringify(grants, null, 2)}\n`, { mode: 0o600 });
    created.push(paths.grants);
  }
  return { created };
}
