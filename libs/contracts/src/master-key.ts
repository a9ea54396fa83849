/** Wire types of the master-key admin API (`/api/v1/master-key` on the admin listener). */

export type MasterKeyVersionState = 'active' | 'retiring' | 'retired';

export interface MasterKeyVersionView {
  version: number;
  /** `active`: new material is wrapped under it; `retiring`: still opens what is not rewrapped yet; `retired`: its key is gone. */
  state: MasterKeyVersionState;
  /** Version 1 is the root of trust itself; later versions are random keys sealed under the root. */
  servedByRoot: boolean;
  createdAt: string;
  retiredAt: string | null;
  /** Rows per rewrap target still wrapped or sealed under this version. */
  references: Record<string, number>;
}

export interface MasterKeyRewrapPass {
  startedAt: string;
  finishedAt: string | null;
  rewrapped: number;
  /** Rows whose stored bytes failed their integrity check and were left as they are. */
  damaged: number;
  error: string | null;
}

export interface MasterKeyStatusView {
  currentVersion: number;
  protection: string;
  versions: MasterKeyVersionView[];
  /** Per rewrap target: rows under versions older than the current one. All zero: the rewrap is complete. */
  remaining: Record<string, number>;
  /** This instance's rewrap job (only one instance at a time runs a pass). */
  rewrap: { state: 'idle' | 'running'; lastPass: MasterKeyRewrapPass | null };
}
