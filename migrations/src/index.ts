import { CreateKeys1764190000000 } from './1764190000000-CreateKeys';
import { CreateAdminPlane1764200000000 } from './1764200000000-CreateAdminPlane';
import { CreateServiceIdentities1764210000000 } from './1764210000000-CreateServiceIdentities';
import { CreateApprovals1764220000000 } from './1764220000000-CreateApprovals';
import { CreateAuditTrail1764300000000 } from './1764300000000-CreateAuditTrail';
import { CreateMasterKeyVersions1764400000000 } from './1764400000000-CreateMasterKeyVersions';
import { RemovePasskeysSoftly1764500000000 } from './1764500000000-RemovePasskeysSoftly';
import { CreateDailyUsage1764510000000 } from './1764510000000-CreateDailyUsage';
import { CreateSealGeneration1764520000000 } from './1764520000000-CreateSealGeneration';
import { ApprovalExecutingStatus1764530000000 } from './1764530000000-ApprovalExecutingStatus';
import { ApprovalInterruptedStatus1764540000000 } from './1764540000000-ApprovalInterruptedStatus';
import { UniqueAdminNames1764550000000 } from './1764550000000-UniqueAdminNames';
import { IndexChallengeExpiry1764560000000 } from './1764560000000-IndexChallengeExpiry';
import { CreateAuditPrunes1764570000000 } from './1764570000000-CreateAuditPrunes';
import { IndexAuditCheckpointTime1764580000000 } from './1764580000000-IndexAuditCheckpointTime';
import { IndexAuditKeyActorBloom1764590000000 } from './1764590000000-IndexAuditKeyActorBloom';

/** Every migration in order. Applied by the server at start-up and by the tests; never edited once released. */
export const KEYHOLD_MIGRATIONS = [
  CreateKeys1764190000000, CreateAdminPlane1764200000000, CreateServiceIdentities1764210000000,
  CreateApprovals1764220000000,
  CreateAuditTrail1764300000000,
  CreateMasterKeyVersions1764400000000,
  RemovePasskeysSoftly1764500000000,
  CreateDailyUsage1764510000000,
  CreateSealGeneration1764520000000,
  ApprovalExecutingStatus1764530000000,
  ApprovalInterruptedStatus1764540000000,
  UniqueAdminNames1764550000000,
  IndexChallengeExpiry1764560000000,
  CreateAuditPrunes1764570000000,
  IndexAuditCheckpointTime1764580000000,
  IndexAuditKeyActorBloom1764590000000,
];
