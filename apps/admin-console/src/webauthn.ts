import { startAuthentication, startRegistration } from '@simplewebauthn/browser';
import type { StepUpOptionsRequest } from '@keyhold/contracts';
import { api } from './api';

// The browser's passkey prompts. Options come from the admin API as JSON; the answers go back to it as they are.

export type RegistrationOptions = Parameters<typeof startRegistration>[0]['optionsJSON'];
export type AssertionOptions = Parameters<typeof startAuthentication>[0]['optionsJSON'];

export const createPasskey = (options: unknown) => startRegistration({ optionsJSON: options as RegistrationOptions });
export const signWithPasskey = (options: unknown) => startAuthentication({ optionsJSON: options as AssertionOptions });

/**
 * The step-up before an action on one's own account (adding or removing a passkey, new recovery codes): the
 * passkey prompt over a single-use challenge the server made for this action; the answer goes with the action.
 */
export async function confirmWithPasskey(request: StepUpOptionsRequest): Promise<unknown> {
  const options = await api('POST', '/api/v1/me/step-up/options', { body: request });
  return signWithPasskey(options);
}
