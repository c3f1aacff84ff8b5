// A DPoP client nobody on sessiond wrote (panva's dpop package) against a
// running sessiond: for each key type it signs in with a proof, refreshes
// and calls GET /v1/me with proofs, following server nonces, and prints
// one JSON line per key: the algorithm, the package's thumbprint of the
// key, and the last access token. Configuration comes from the
// environment: SESSIOND_URL (the public URL), EMAIL, PASSWORD.
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop'

const base = process.env.SESSIOND_URL
const email = process.env.EMAIL
const password = process.env.PASSWORD

async function run(alg) {
  const keypair = await generateKeyPair(alg)
  let nonce
  // call sends one request with a fresh proof, and once more with the
  // server's nonce when it asks for one.
  async function call(method, path, body, accessToken) {
    for (let attempt = 0; ; attempt++) {
      const headers = { DPoP: await generateProof(keypair, base + path, method, nonce, accessToken) }
      if (body) headers['Content-Type'] = 'application/json'
      if (accessToken) headers.Authorization = `DPoP ${accessToken}`
      const res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) })
      nonce = res.headers.get('DPoP-Nonce') ?? nonce
      const answer = await res.json()
      if (res.status === 401 && answer.code === 'use_dpop_nonce' && attempt === 0) continue
      if (res.status !== 200) throw new Error(`${alg} ${method} ${path}: ${res.status} ${JSON.stringify(answer)}`)
      return answer
    }
  }
  const login = await call('POST', '/v1/login', { email, password })
  if (login.token_type !== 'DPoP') throw new Error(`${alg} login: token_type ${login.token_type}`)
  const refreshed = await call('POST', '/v1/refresh', { refresh_token: login.refresh_token })
  if (refreshed.token_type !== 'DPoP') throw new Error(`${alg} refresh: token_type ${refreshed.token_type}`)
  const me = await call('GET', '/v1/me', undefined, refreshed.access_token)
  if (me.session_id !== login.session_id) throw new Error(`${alg} me: session ${me.session_id}, want ${login.session_id}`)
  return { alg, jkt: await calculateThumbprint(keypair.publicKey), access_token: refreshed.access_token, session_id: login.session_id }
}

for (const alg of ['ES256', 'Ed25519']) {
  console.log(JSON.stringify(await run(alg)))
}
