import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { KeyEntity } from './key.entity';

@Entity({ name: 'keyhold_key_versions' })
export class KeyVersionEntity {
  @PrimaryColumn('uuid', { name: 'key_id' })
  keyId!: string;

  @PrimaryColumn('integer')
  version!: number;

  @ManyToOne(() => KeyEntity, (key) => key.versions)
  @JoinColumn({ name: 'key_id' })
  key?: KeyEntity;

  @Column('text')
  state!: string;

  /** SECRET, wrapped: never selected unless the material is about to be unwrapped. */
  @Column('bytea', { name: 'wrapped_material', nullable: true, select: false })
  wrappedMaterial!: Buffer | null;

  @Column('integer', { name: 'master_key_version', nullable: true })
  masterKeyVersion!: number | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'destroy_at', nullable: true })
  destroyAt!: Date | null;

  @Column('timestamptz', { name: 'destroyed_at', nullable: true })
  destroyedAt!: Date | null;

  @Column('bigint', { transformer: { from: (value: string | null) => Number(value ?? 0), to: (value: number) => value } })
  encryptions!: number;

  @Column('timestamptz', { name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;
}
