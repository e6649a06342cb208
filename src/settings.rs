//! Typed configuration. Every value comes from a flag or its environment variable (DESIGN.md §6);
//! secrets are read into `secrecy` types and never logged.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use warden_aggregates::account::SecurityPolicy;
use warden_projections::audit_chain::TrustedKeys;
use warden_projections::{SigningKey, VerifyingKey};

use crate::adapters::sealing::MasterKey;
use crate::app::credentials::cache::CacheLimits as CredentialCacheLimits;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL connection string.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/warden"
    )]
    pub database_url: String,
    /// Listen address.
    #[arg(long, env = "WARDEN_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Base64 32-byte master key; without it a development key is kept in the data directory.
    #[arg(long, env = "WARDEN_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<SecretString>,
    /// Master keys (base64, comma-separated) that open what they sealed but never seal: during a
    /// rotation the one coming in, after it the ones going out (docs/operations.md, "Keys").
    #[arg(
        long,
        env = "WARDEN_OTHER_MASTER_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub other_master_keys: Vec<SecretString>,
    /// Base64 32-byte Ed25519 seed that signs audit checkpoints; without it a development key is
    /// kept in the data directory.
    #[arg(long, env = "WARDEN_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<SecretString>,
    /// Public halves (base64) of checkpoint keys retired by `warden keys rotate-signing`,
    /// comma-separated: the checkpoints they signed still verify.
    #[arg(long, env = "WARDEN_RETIRED_SIGNING_KEYS", value_delimiter = ',')]
    pub retired_signing_keys: Vec<String>,
    /// Sign the audit chain's head this often (seconds) when events arrived since the last
    /// checkpoint; a checkpoint is also signed every 1,000 events.
    #[arg(long, env = "WARDEN_CHECKPOINT_SECONDS", default_value_t = 10)]
    pub checkpoint_seconds: u64,
    /// NATS server to publish the event stream to (JetStream), e.g. nats://127.0.0.1:4222.
    #[arg(long, env = "WARDEN_NATS_URL")]
    pub nats_url: Option<String>,
    /// Subject prefix for published events; the stream takes its name from it.
    #[arg(long, env = "WARDEN_NATS_SUBJECT", default_value = "warden.events")]
    pub nats_subject: String,
    /// Where development keys live.
    #[arg(long, env = "WARDEN_DATA_DIR", default_value = ".warden")]
    pub data_dir: PathBuf,
    /// SMTP server, e.g. smtp://127.0.0.1:2525; without it mail goes to the mail directory.
    #[arg(long, env = "WARDEN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// One .eml file per message when no SMTP server is configured.
    #[arg(long, env = "WARDEN_MAIL_DIR", default_value = ".warden/mail")]
    pub mail_dir: PathBuf,
    /// The sender of Warden's mail.
    #[arg(
        long,
        env = "WARDEN_MAIL_FROM",
        default_value = "Warden <no-reply@warden.localhost>"
    )]
    pub mail_from: String,
    /// The address users reach the frontend at, for links in mail; its host is the passkeys'
    /// relying party unless `WARDEN_WEBAUTHN_RP_ID` says otherwise (`localhost`, not an IP
    /// address, so that passkeys work in development).
    #[arg(
        long,
        env = "WARDEN_PUBLIC_URL",
        default_value = "http://localhost:8080"
    )]
    pub public_url: String,
    /// The WebAuthn relying party id passkeys are bound to: a registrable domain (no scheme, no
    /// port). Changing it disables every registered passkey. The host of `WARDEN_PUBLIC_URL` by
    /// default.
    #[arg(long, env = "WARDEN_WEBAUTHN_RP_ID")]
    pub webauthn_rp_id: Option<String>,
    /// Origins (comma-separated) passkey ceremonies may come from, each on the relying party's
    /// domain or a subdomain of it. The origin of `WARDEN_PUBLIC_URL` by default.
    #[arg(long, env = "WARDEN_WEBAUTHN_ORIGINS", value_delimiter = ',')]
    pub webauthn_origins: Vec<String>,
    /// Origins a single sign-on may return the browser to (`return_to`), comma-separated. The
    /// origin of `WARDEN_PUBLIC_URL` by default.
    #[arg(
        long = "sso-return-origin",
        env = "WARDEN_SSO_RETURN_ORIGINS",
        value_delimiter = ','
    )]
    pub sso_return_origins: Vec<String>,
    /// Where identity providers send the browser back to; register it at each provider.
    /// `WARDEN_PUBLIC_URL/v1/sso/callback` by default.
    #[arg(long, env = "WARDEN_SSO_REDIRECT_URL")]
    pub sso_redirect_url: Option<String>,
    /// Frontend origins whose browsers may call `/v1` (CORS), comma-separated, e.g.
    /// `https://app.example.com`. None by default.
    #[arg(
        long = "cors-origin",
        env = "WARDEN_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// The issuer shown in authenticator apps.
    #[arg(long, env = "WARDEN_TOTP_ISSUER", default_value = "Warden")]
    pub totp_issuer: String,
    /// Log filter; logs are JSON lines.
    #[arg(long, env = "WARDEN_LOG", default_value = "info")]
    pub log: String,
    /// A session ends after this many minutes without a request.
    #[arg(long, env = "WARDEN_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: i64,
    /// A session ends this many hours after login, whatever its use.
    #[arg(long, env = "WARDEN_SESSION_ABSOLUTE_HOURS", default_value_t = 12)]
    pub session_absolute_hours: i64,
    /// Database connections per process.
    #[arg(long, env = "WARDEN_DB_CONNECTIONS", default_value_t = 16)]
    pub db_connections: u32,
    /// Live credentials each process keeps in memory.
    #[arg(
        long,
        env = "WARDEN_CREDENTIAL_CACHE_ENTRIES",
        default_value_t = 200_000
    )]
    pub credential_cache_entries: u64,
    /// Memory the credential cache may take, in MiB.
    #[arg(long, env = "WARDEN_CREDENTIAL_CACHE_MIB", default_value_t = 256)]
    pub credential_cache_mib: u64,
    /// Introspection calls each `introspect` token may make per second on each process (they
    /// are not charged to the token's 60 requests a minute).
    #[arg(long, env = "WARDEN_INTROSPECT_PER_SECOND", default_value_t = 50_000)]
    pub introspect_per_second: u32,
    /// Logins, second-factor steps, registrations and reset requests one client address may
    /// make per minute on each process.
    #[arg(long, env = "WARDEN_CLIENT_ATTEMPTS_PER_MINUTE", default_value_t = 60)]
    pub client_attempts_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client, comma-separated addresses.
    /// Without them the client is the peer of the connection.
    #[arg(
        long = "trusted-proxy",
        env = "WARDEN_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Settings {
    pub fn sso_redirect_uri(&self) -> String {
        self.sso_redirect_url
            .clone()
            .unwrap_or_else(|| format!("{}/v1/sso/callback", self.public_url.trim_end_matches('/')))
    }

    /// The WebAuthn relying party: its id and the origins ceremonies may come from. `None` when
    /// no id is configured and `WARDEN_PUBLIC_URL` names an IP address, which WebAuthn does not
    /// take as a relying party: passkeys are then off.
    pub fn webauthn(&self) -> anyhow::Result<Option<webauthn_rs::Webauthn>> {
        let public = reqwest::Url::parse(&self.public_url).context("WARDEN_PUBLIC_URL")?;
        let rp_id = match (&self.webauthn_rp_id, public.domain()) {
            (Some(id), _) => id.clone(),
            (None, Some(domain)) => domain.to_string(),
            (None, None) => {
                tracing::warn!(
                    public_url = %self.public_url,
                    "passkeys are off: WARDEN_PUBLIC_URL names no domain (set WARDEN_WEBAUTHN_RP_ID)"
                );
                return Ok(None);
            }
        };
        let origins = if self.webauthn_origins.is_empty() {
            vec![public]
        } else {
            self.webauthn_origins
                .iter()
                .map(|o| reqwest::Url::parse(o.trim()).context("WARDEN_WEBAUTHN_ORIGINS"))
                .collect::<anyhow::Result<_>>()?
        };
        let mut builder = webauthn_rs::WebauthnBuilder::new(&rp_id, &origins[0])
            .context("WARDEN_WEBAUTHN_RP_ID does not match the origin")?
            .rp_name("Warden");
        for origin in &origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        builder
            .build()
            .map(Some)
            .context("the WebAuthn relying party's settings")
    }

    /// The configured origins, and always Warden's own (its account pages sign in there).
    pub fn sso_return_origins(&self) -> Vec<String> {
        let mut origins = self.sso_return_origins.clone();
        if let Ok(url) = reqwest::Url::parse(&self.public_url) {
            let own = url.origin().ascii_serialization();
            if !origins.iter().any(|o| o.trim_end_matches('/') == own) {
                origins.push(own);
            }
        }
        origins
    }

    pub fn credential_cache_limits(&self) -> CredentialCacheLimits {
        CredentialCacheLimits {
            max_entries: self.credential_cache_entries.max(1),
            max_bytes: self.credential_cache_mib.max(1) * 1024 * 1024,
        }
    }

    pub fn policy(&self) -> SecurityPolicy {
        SecurityPolicy {
            session_idle_timeout: chrono::Duration::minutes(self.session_idle_minutes.max(1)),
            session_absolute_ttl: chrono::Duration::hours(self.session_absolute_hours.max(1)),
            ..SecurityPolicy::default()
        }
    }

    /// The configured master key, or the development key file (created with mode 0600), with
    /// the other master keys.
    pub fn load_master_key(&self) -> anyhow::Result<MasterKey> {
        let key = self.key_or_development_key(
            self.master_key.as_ref(),
            "WARDEN_MASTER_KEY",
            "master.key",
            |text| Ok(MasterKey::from_base64(text)?),
            || {
                let key = MasterKey::generate();
                let text = key.to_base64();
                (key, text)
            },
        )?;
        self.with_other_master_keys(key)
    }

    /// `key` opening also with the configured other master keys and, with a development key,
    /// those a rotation left in the data directory.
    pub fn with_other_master_keys(&self, key: MasterKey) -> anyhow::Result<MasterKey> {
        let mut others: Vec<String> = self
            .other_master_keys
            .iter()
            .map(|k| k.expose_secret().to_string())
            .collect();
        if self.master_key.is_none() {
            others.extend(read_dir_texts(&self.retired_master_keys_dir())?);
        }
        key.also_opening(&others)
            .context("WARDEN_OTHER_MASTER_KEYS holds a value that is not a base64 32-byte key")
    }

    /// Where a development rotation keeps the master keys it retired (mode 0600 each).
    pub fn retired_master_keys_dir(&self) -> PathBuf {
        self.data_dir.join("retired-master-keys")
    }

    /// Replaces the development master key, keeping the old one among the retired.
    pub fn replace_development_master_key(
        &self,
        old: &MasterKey,
        new: &MasterKey,
    ) -> anyhow::Result<()> {
        let dir = self.retired_master_keys_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_private(&dir.join(format!("{}.key", old.id())), &old.to_base64())?;
        self.replace_development_key("master.key", &new.to_base64())
    }

    /// The configured signing key, or the development key file beside the master key (0600).
    pub fn load_signing_key(&self) -> anyhow::Result<SigningKey> {
        self.key_or_development_key(
            self.signing_key.as_ref(),
            "WARDEN_SIGNING_KEY",
            "signing.key",
            signing_key_from_base64,
            || {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let text = signing_key_to_base64(&key);
                (key, text)
            },
        )
    }

    /// Replaces the development signing key in the data directory (written aside, then renamed
    /// over the old one).
    pub fn replace_development_signing_key(&self, key: &SigningKey) -> anyhow::Result<()> {
        self.replace_development_key("signing.key", &signing_key_to_base64(key))
    }

    /// Writes a development key aside, then renames it over the old one.
    fn replace_development_key(&self, file: &str, text: &str) -> anyhow::Result<()> {
        let path = self.data_dir.join(file);
        let aside = self.data_dir.join(format!("{file}.new"));
        let _ = std::fs::remove_file(&aside);
        write_private(&aside, text)?;
        std::fs::rename(&aside, &path).with_context(|| format!("replacing {}", path.display()))
    }

    /// Where a development rotation keeps the public halves of retired signing keys.
    pub fn retired_keys_dir(&self) -> PathBuf {
        self.data_dir.join("retired-signing-keys")
    }

    /// Every key a checkpoint may be signed with: `current`, the retired ones configured, and,
    /// with development keys, those a rotation left in the data directory.
    pub fn trusted_signing_keys(&self, current: &SigningKey) -> anyhow::Result<TrustedKeys> {
        let mut keys = vec![current.verifying_key()];
        for text in self
            .retired_signing_keys
            .iter()
            .filter(|t| !t.trim().is_empty())
        {
            keys.push(public_key_from_base64(text).context("WARDEN_RETIRED_SIGNING_KEYS")?);
        }
        if self.signing_key.is_none() {
            for text in read_dir_texts(&self.retired_keys_dir())? {
                keys.push(public_key_from_base64(&text).context("a retired signing key")?);
            }
        }
        Ok(TrustedKeys::new(keys))
    }

    /// A base64 32-byte key from configuration; else from `file` in the data directory; else a
    /// new one, written there with mode 0600.
    fn key_or_development_key<K>(
        &self,
        configured: Option<&SecretString>,
        variable: &str,
        file: &str,
        parse: impl Fn(&str) -> anyhow::Result<K>,
        generate: impl FnOnce() -> (K, String),
    ) -> anyhow::Result<K> {
        if let Some(key) = configured {
            return parse(key.expose_secret())
                .with_context(|| format!("{variable} is not a base64 32-byte key"));
        }
        let path = self.data_dir.join(file);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return parse(&text)
                .with_context(|| format!("{} is not a base64 32-byte key", path.display()));
        }
        let (key, text) = generate();
        write_private(&path, &text)?;
        tracing::warn!(path = %path.display(), "generated a development key");
        Ok(key)
    }
}

/// Reads an Ed25519 signing key: a base64 32-byte seed.
pub fn signing_key_from_base64(text: &str) -> anyhow::Result<SigningKey> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .context("not base64")?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("not a 32-byte key"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads an Ed25519 public key: base64, 32 bytes.
pub fn public_key_from_base64(text: &str) -> anyhow::Result<VerifyingKey> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .context("the key is not base64")?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("not a 32-byte Ed25519 key"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("not an Ed25519 public key"))
}

pub fn public_key_to_base64(key: &VerifyingKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

pub fn signing_key_to_base64(key: &SigningKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// The text of every file in `dir`; none when it does not exist.
fn read_dir_texts(dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .map(|path| {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}
