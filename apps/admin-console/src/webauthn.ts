import { startAuthentication, startRegistration } from '@simplewebauthn/browser';

// The browser's passkey prompts. Options come from the admin API as JSON; the answers go back to it as they are.

export type RegistrationOptions = Parameters<typeof startRegistration>[0]['optionsJSON'];
export type AssertionOptions = Parameters<typeof startAuthentication>[0]['optionsJSON'];

export const createPasskey = (options: unknown) => startRegistration({ optionsJSON: options as RegistrationOptions });
export const signWithPasskey = (options: unknown) => startAuthentication({ optionsJSON: options as AssertionOptions });
