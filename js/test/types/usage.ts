// Compiled by `tsc -p test/types` (test.sh), never run: the shipped .d.ts
// must type-check under --strict and describe the calls a page makes.
import { createClient, SessiondError, type ChangeEvent, type MfaRequired, type SignInResult } from '../../src/sessiond-browser.js'

const client = createClient({ baseUrl: 'https://auth.example.com', tokenOrigins: ['https://api.example.com'] })

const off: () => void = client.onChange((e: ChangeEvent) => {
  if (e.state === 'signedOut') console.log('signed out:', e.reason)
})

async function main(): Promise<void> {
  const r: SignInResult | MfaRequired = await client.signIn({ email: 'ada@example.com', password: 'correct horse battery staple' })
  if ('mfaRequired' in r && r.mfaRequired) {
    await client.completeMfa({ code: '123456' })
  }
  const res: Response = await client.fetch('https://api.example.com/notes', { method: 'POST', body: '{}' })
  console.log(res.status, client.state, client.tokenType)
  for (const s of await client.sessions()) {
    if (!s.current) await client.endSession(s.session_id)
  }
  try {
    await client.changePassword({ currentPassword: 'a', newPassword: 'b' })
  } catch (err) {
    if (err instanceof SessiondError && err.code === 'reauthentication_required') console.log(err.status)
  }
  await client.signOut()
  off()
  client.close()
}
void main()
