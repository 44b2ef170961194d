import { Type } from '@sinclair/typebox';

export const SignInBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 1024, description: 'The API token (as in `Authorization: Bearer`)' }),
}, { additionalProperties: false });

export const SessionInfo = Type.Object({
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the session cookie stops being accepted; null for a Bearer token' }),
}, { additionalProperties: false });
