// Types of @sessiond/browser (sessiond-browser.js beside this file).

/** An error answer of sessiond (RFC 9457 problem), or status 0 / code "network". */
export class SessiondError extends Error {
  constructor(status: number, problem?: Problem | null, retryAfter?: number)
  readonly name: 'SessiondError'
  /** HTTP status; 0 when the request never got an answer. */
  readonly status: number
  /** The problem's stable code (invalid_credentials, mfa_required, …); "network" for no answer. */
  readonly code: string
  /** Seconds from Retry-After, 0 without one. */
  readonly retryAfter: number
  /** The whole problem document, extension members (mfa_token, methods) included. */
  readonly problem: Problem
}

export interface Problem {
  type?: string
  title?: string
  status?: number
  detail?: string
  code?: string
  [member: string]: unknown
}

export type State = 'unknown' | 'signedIn' | 'signedOut'

/**
 * Why the state changed.
 * signedIn: "signIn" (this tab signed in), "restore" (the cookie's session was
 * resumed), "refresh" (never an event: refreshes keep the state), "peer"
 * (another tab signed in or handed over its token).
 * signedOut: "signOut", "signOutEverywhere", "accountDeleted" (this tab or another
 * did it), "no_session" (no session cookie), or the refresh's problem code:
 * "invalid_refresh_token", "session_expired", "refresh_token_reused",
 * "account_disabled", "invalid_dpop_proof", or another 4xx code.
 */
export type Reason =
  | 'signIn' | 'restore' | 'refresh' | 'peer'
  | 'signOut' | 'signOutEverywhere' | 'accountDeleted' | 'no_session'
  | 'invalid_refresh_token' | 'session_expired' | 'refresh_token_reused'
  | 'account_disabled' | 'invalid_dpop_proof' | (string & {})

export interface ChangeEvent {
  state: Exclude<State, 'unknown'>
  reason: Reason
}

/** What the client uses from its surroundings; every member defaults to the browser's. For tests. */
export interface Environment {
  fetch?: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>
  /** navigator.locks, or null to use the localStorage lease. */
  locks?: Pick<LockManager, 'request'> | null
  BroadcastChannel?: { new (name: string): BroadcastChannel } | null
  localStorage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null
  crypto?: Crypto | null
  indexedDB?: IDBFactory | null
  /** Where the DPoP key pair is kept; default: IndexedDB. */
  keyStore?: KeyStore | null
  now?: () => number
  setTimeout?: (f: () => void, ms: number) => unknown
  clearTimeout?: (t: unknown) => void
  random?: () => number
}

export interface KeyStore {
  get(): Promise<CryptoKeyPair | undefined | null>
  set(pair: CryptoKeyPair): Promise<unknown>
  delete(): Promise<unknown>
}

export interface ClientOptions {
  /** sessiond's public URL (SESSIOND_PUBLIC_URL), e.g. "https://auth.example.com". Default: the page's origin. */
  baseUrl?: string
  /** Bind sessions to a DPoP key (default true); without WebCrypto or IndexedDB sessions are unbound anyway. */
  bind?: boolean
  /** Send DPoP proofs with a bound AT to the tokenOrigins too (default false: Bearer there). */
  dpop?: boolean
  /** Origins besides sessiond's whose requests through client.fetch get the AT. */
  tokenOrigins?: string[]
  /** How long a tab waits for the other tabs' answer, in ms (default 200). */
  askTimeout?: number
  /** The longest wait between retries of a failing refresh, in ms (default 30000). */
  maxBackoff?: number
  /** A refresh request's deadline, in ms (default 15000). */
  refreshTimeout?: number
  env?: Environment
}

export interface SignInResult {
  mfaRequired: false
  sessionId: string
  /** "DPoP" when the session is bound to this browser's key. */
  tokenType: 'Bearer' | 'DPoP'
}

export interface MfaRequired {
  mfaRequired: true
  /** Pass to completeMfa (it remembers the last one too). */
  mfaToken: string
  /** What the account has: "totp", "recovery_code", "passkey". */
  methods: string[]
}

export type SecondFactor =
  | { mfaToken?: string; code: string }
  | { mfaToken?: string; recoveryCode: string }
  /** Runs the passkey ceremony for this login (navigator.credentials.get). */
  | { mfaToken?: string; passkey: true }
  /** An assertion the page got itself, for a challenge of /v1/login/passkey/begin with the mfa_token. */
  | { mfaToken?: string; challengeId: string; credential: unknown }

export type Proof =
  | { password: string }
  | { code: string }
  | { passkey: true }
  | { challenge_id: string; credential: unknown }

export interface SessionInfo {
  session_id: string
  created_at: string
  last_used_at: string
  expires_at: string
  user_agent: string
  ip: string
  current: boolean
}

export interface Me {
  user_id: string
  email: string
  email_verified: boolean
  session_id: string
}

export interface Passkey {
  passkey_id: string
  name: string
  created_at: string
  last_used_at: string | null
}

/** fetch's init, plus dpop: send a DPoP proof to a third-party API (overrides ClientOptions.dpop). */
export interface FetchInit extends RequestInit {
  dpop?: boolean
}

export interface Client {
  readonly state: State
  readonly sessionId: string
  /** "Bearer", "DPoP", or "" when there is no token. */
  readonly tokenType: '' | 'Bearer' | 'DPoP'
  readonly passkeysSupported: boolean
  /** Calls listener on every change of state, in every tab; returns the unsubscribe function. */
  onChange(listener: (e: ChangeEvent) => void): () => void
  /**
   * Resumes the cookie's session: a live tab's token, else one refresh.
   * Rejects with a SessiondError when sessiond cannot be reached (the client keeps retrying and
   * onChange says when it is signed in).
   */
  restore(): Promise<State>
  /** A usable AT, refreshed first when due; "" when signed out. */
  getToken(): Promise<string>
  /**
   * fetch with the AT for sessiond and tokenOrigins (other URLs pass through untouched):
   * refreshed shortly before expiry, and once on a 401 about the token, after which the request is
   * sent once more if its body can be replayed (not a stream).
   */
  fetch(input: RequestInfo | URL, init?: FetchInit): Promise<Response>
  /** Any sessiond endpoint with the AT; the answer's JSON (null for 204), or a SessiondError. */
  request<T = any>(method: string, path: string, body?: unknown): Promise<T>

  signUp(a: { email: string; password: string }): Promise<{ user_id: string; email: string; created_at: string } | { status: 'verification_sent' }>
  signIn(a: { email: string; password: string }): Promise<SignInResult | MfaRequired>
  completeMfa(f: SecondFactor): Promise<SignInResult>
  signInWithPasskey(): Promise<SignInResult>
  /** Ends this browser's session, in every tab; never rejects. */
  signOut(): Promise<void>
  signOutEverywhere(): Promise<void>
  deleteAccount(a: { password: string }): Promise<void>

  me(): Promise<Me>
  sessions(): Promise<SessionInfo[]>
  endSession(sessionId: string): Promise<null>

  forgotPassword(a: { email: string }): Promise<{ status: 'accepted' }>
  resetPassword(a: { token: string; newPassword: string }): Promise<null>
  verifyEmail(a: { token: string }): Promise<null>
  resendVerification(): Promise<{ status: 'accepted' }>
  changePassword(a: { currentPassword: string; newPassword: string }): Promise<null>
  changeEmail(a: { password: string; newEmail: string }): Promise<{ status: 'accepted' }>
  reauthenticate(p: Proof): Promise<null>

  mfa(): Promise<{ totp: boolean; recovery_codes_left: number }>
  enrollTotp(): Promise<{ secret: string; otpauth_url: string; qr_code: string }>
  confirmTotp(a: { code: string }): Promise<{ recovery_codes: string[] }>
  disableTotp(p?: { code: string } | { recovery_code: string }): Promise<null>
  regenerateRecoveryCodes(p?: { code: string } | { recovery_code: string }): Promise<{ recovery_codes: string[] }>

  passkeys(): Promise<Passkey[]>
  addPasskey(a?: { name?: string }): Promise<Passkey>
  renamePasskey(passkeyId: string, a: { name: string }): Promise<Passkey>
  removePasskey(passkeyId: string): Promise<null>

  /** Stops timers and leaves the channel (tests, single-page apps tearing down). */
  close(): void
}

export function createClient(options?: ClientOptions): Client
