import { CreateKeys1764190000000 } from './1764190000000-CreateKeys';

/** Every migration in order. Applied by the server at start-up and by the tests; never edited once released. */
export const KEYHOLD_MIGRATIONS = [CreateKeys1764190000000];
