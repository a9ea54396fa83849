import { Column, Entity, OneToMany, PrimaryColumn } from 'typeorm';
import { KeyVersionEntity } from './key-version.entity';

@Entity({ name: 'keyhold_keys' })
export class KeyEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('text', { unique: true })
  name!: string;

  @Column('text')
  algorithm!: string;

  @Column('text', { nullable: true })
  description!: string | null;

  @Column('text')
  state!: string;

  @Column('integer', { name: 'primary_version' })
  primaryVersion!: number;

  @Column('integer', { name: 'min_decryption_version' })
  minDecryptionVersion!: number;

  @Column('integer', { name: 'rotation_period_days', nullable: true })
  rotationPeriodDays!: number | null;

  @Column('timestamptz', { name: 'next_rotation_at', nullable: true })
  nextRotationAt!: Date | null;

  @Column('timestamptz', { name: 'destroy_at', nullable: true })
  destroyAt!: Date | null;

  @Column('jsonb')
  labels!: Record<string, string>;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;

  @OneToMany(() => KeyVersionEntity, (version) => version.key)
  versions?: KeyVersionEntity[];
}
