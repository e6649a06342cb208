// A frontend's first steps against Warden, written only with the generated types: if the
// OpenAPI document and this code disagree about a path, a field or an enum, `tsc` fails.
import createClient from "openapi-fetch";
import type { paths, components } from "./generated/warden";

type Session = components["schemas"]["SessionView"];

const warden = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

export async function signIn(email: string, password: string, code: () => Promise<string>) {
  const first = await warden.POST("/v1/sessions", {
    body: { email, password, device_name: "browser" },
  });
  if (first.error) {
    throw new Error(`${first.error.code}: ${first.error.detail}`);
  }
  const answer = first.data;
  if (answer.status === "authenticated") {
    return answer.token;
  }
  if (answer.status === "mfa_enrollment_required") {
    // A workspace requires MFA: this session may only enroll a factor (see enrollTotp).
    return answer.token;
  }
  const method: components["schemas"]["MfaMethodName"] = answer.methods.includes("totp")
    ? "totp"
    : "recovery_code";
  const second = await warden.POST("/v1/sessions/mfa", {
    body: { challenge: answer.challenge, method, code: await code() },
  });
  if (second.error) {
    throw new Error(`${second.error.code}: ${second.error.detail}`);
  }
  return second.data.token;
}

export async function enrollTotp(token: string) {
  const headers = { Authorization: `Bearer ${token}` };
  const enrollment = await warden.POST("/v1/me/mfa/totp", { headers });
  if (enrollment.error) {
    throw new Error(enrollment.error.code);
  }
  const { otpauth_uri, qr_svg, recovery_codes } = enrollment.data;
  return { otpauth_uri, qr_svg, recoveryCodes: recovery_codes.length };
}

export async function loginHistory(token: string): Promise<Session[]> {
  const response = await warden.GET("/v1/me/sessions", {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (response.error) {
    throw new Error(response.error.code);
  }
  const ended: (string | null | undefined)[] = response.data.sessions.map((s) => s.end_reason);
  void ended;
  return response.data.sessions.filter((s) => s.current || s.ended_at == null);
}

// "Sign in with …": the buttons, and the page `return_to` lands on with its one-time code.
export async function providerButtons(returnTo: string) {
  const providers = await warden.GET("/v1/identity-providers");
  if (providers.error) {
    throw new Error("no providers");
  }
  return providers.data.map((p) => ({
    label: `Sign in with ${p.name}`,
    href: `http://127.0.0.1:8080/v1/sso/${p.id}/start?return_to=${encodeURIComponent(returnTo)}`,
  }));
}

export async function finishSignIn(loginCode: string) {
  const answer = await warden.POST("/v1/sso/exchange", { body: { login_code: loginCode } });
  if (answer.error) {
    throw new Error(`${answer.error.code}: ${answer.error.detail}`);
  }
  return answer.data.token;
}

/** Passwordless: request options, the browser's answer to them, a session of method `passkey`. */
export async function signInWithPasskey(
  answer: (publicKey: unknown) => Promise<{ toJSON(): object }>,
): Promise<string> {
  const options = await warden.POST("/v1/sessions/passkey/options", {});
  if (options.error) {
    throw new Error(`${options.error.code}: ${options.error.detail}`);
  }
  const credential = await answer(options.data);
  const signedIn = await warden.POST("/v1/sessions/passkey", {
    body: { credential: credential.toJSON() },
  });
  if (signedIn.error) {
    throw new Error(`${signedIn.error.code}: ${signedIn.error.detail}`);
  }
  return signedIn.data.token;
}
