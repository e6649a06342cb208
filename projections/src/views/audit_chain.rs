//! `audit_chain_v1`: tamper evidence for the whole log. Every event, in commit order, is hashed
//! (SHA-256 of its canonical form) and chained: `chain_n = SHA-256(chain_{n-1} || event_n)`.
//! Checkpoints sign `(n, position, chain_n)` with Ed25519. Changing, removing, inserting or
//! reordering a stored event changes the recomputed chain from that event on; a checkpoint
//! signature makes a rewritten chain table detectable too.
//!
//! The canonical form is the event's type, version, aggregate, sequence, payload, metadata and
//! position as JSON with sorted keys and no spaces, where every field holding a secret's stored
//! form is replaced by `{"sha256": <hex of its JSON>}`. An export in that form can be checked
//! offline and carries no password hash or token hash.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};

use crate::runtime::checkpoint::{parse_xid8, Cursor};
use crate::runtime::progress::{Progress, Silent};
use crate::runtime::projector::{ProjectionError, Projector, StoredEvent};

/// Payload and metadata fields that hold a secret's stored form (a password or PIN hash, a
/// token, challenge or code hash, a sealed TOTP secret, recovery code hashes, an identity
/// provider's sealed client secret, a passkey ceremony's sealed state).
pub const SECRET_FIELDS: [&str; 9] = [
    "password_hash",
    "token_hash",
    "challenge_hash",
    "code_hash",
    "pin_hash",
    "secret",
    "recovery_codes",
    "client_secret",
    "ceremony",
];

pub type Hash = [u8; 32];
const GENESIS: Hash = [0; 32];

/// JSON with object keys sorted and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, false, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Where canonical JSON goes: a buffer, or straight into a hash. Neither can fail to take
/// bytes, so the helpers drop the `io::Result` that `Write` makes them return.
trait Sink: Write {
    fn put(&mut self, bytes: &[u8]) {
        let _ = self.write_all(bytes);
    }

    /// A string or number exactly as `serde_json` writes it.
    fn scalar(&mut self, value: &(impl Serialize + ?Sized)) {
        let _ = serde_json::to_writer(self, value);
    }
}

impl<W: Write> Sink for W {}

/// A SHA-256 that canonical JSON is written into.
struct Hashing(Sha256);

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The canonical form of `value`; with `digest`, every field named in `SECRET_FIELDS` (at any
/// depth) is written as `{"sha256": <hex of the field's canonical JSON>}`.
fn write_canonical(value: &Value, digest: bool, out: &mut impl Write) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by_key(|(name, _)| *name);
            out.put(b"{");
            for (i, (name, field)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                out.scalar(name.as_str());
                out.put(b":");
                if digest && SECRET_FIELDS.contains(&name.as_str()) {
                    let mut hash = Hashing(Sha256::new());
                    write_canonical(field, false, &mut hash);
                    out.put(b"{\"sha256\":\"");
                    out.put(hex::encode(hash.0.finalize()).as_bytes());
                    out.put(b"\"}");
                } else {
                    write_canonical(field, digest, out);
                }
            }
            out.put(b"}");
        }
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_canonical(item, digest, out);
            }
            out.put(b"]");
        }
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(number) => out.scalar(number),
        Value::String(text) => out.scalar(text.as_str()),
    }
}

/// The event as the chain hashes it (and as an export carries it).
pub fn canonical_event(event: &StoredEvent) -> Value {
    serde_json::from_slice(&canonical_event_json(event)).unwrap_or(Value::Null)
}

/// `canonical_event` as canonical JSON, written without building it as a value.
fn canonical_event_json(event: &StoredEvent) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical_event(event, &mut out);
    out
}

/// The canonical event's fields, in sorted order.
fn write_canonical_event(event: &StoredEvent, out: &mut impl Write) {
    out.put(b"{\"aggregate_id\":");
    out.scalar(event.aggregate_id.as_str());
    out.put(b",\"aggregate_type\":");
    out.scalar(event.aggregate_type.as_str());
    out.put(b",\"event_type\":");
    out.scalar(event.event_type.as_str());
    out.put(b",\"event_version\":");
    out.scalar(event.event_version.as_str());
    out.put(b",\"metadata\":");
    write_canonical(&event.metadata, true, out);
    out.put(b",\"payload\":");
    write_canonical(&event.payload, true, out);
    out.put(b",\"position\":");
    out.scalar(event.cursor.to_string().as_str());
    out.put(b",\"sequence\":");
    out.scalar(&event.sequence);
    out.put(b"}");
}

/// SHA-256 of the event's canonical form, hashed as it is written.
pub fn event_hash(event: &StoredEvent) -> Hash {
    let mut hash = Hashing(Sha256::new());
    write_canonical_event(event, &mut hash);
    hash.0.finalize().into()
}

pub fn hash_canonical(canonical: &Value) -> Hash {
    let mut hash = Hashing(Sha256::new());
    write_canonical(canonical, false, &mut hash);
    hash.0.finalize().into()
}

pub fn link(previous: &Hash, event_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(event_hash);
    hasher.finalize().into()
}

/// A short name for a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The checkpoint keys a verifier trusts, by key id: the one signing now and every one retired
/// by a rotation. They come from the verifier's configuration or file, never from the database
/// whose checkpoints they check.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(BTreeMap<String, VerifyingKey>);

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self(keys.into_iter().map(|key| (key_id(&key), key)).collect())
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.0.get(key_id)
    }

    /// The keys in order of key id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &VerifyingKey)> {
        self.0.iter()
    }
}

impl From<VerifyingKey> for TrustedKeys {
    fn from(key: VerifyingKey) -> Self {
        Self::new([key])
    }
}

/// A signed statement that the chain's first `events` events end in `chain_hash` at `position`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub events: i64,
    pub position: String,
    /// Hex.
    pub chain_hash: String,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    /// Base64 Ed25519 signature over `message()`.
    pub signature: String,
}

impl Checkpoint {
    fn message(events: i64, position: &str, chain_hash: &str, signed_at: &DateTime<Utc>) -> String {
        format!(
            "warden audit checkpoint v1\n{events}\n{position}\n{chain_hash}\n{}",
            signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    pub fn sign(
        key: &SigningKey,
        events: i64,
        position: Cursor,
        chain_hash: &Hash,
        now: DateTime<Utc>,
    ) -> Self {
        let signed_at = now.trunc_subsecs(0);
        let position = position.to_string();
        let chain_hash = hex::encode(chain_hash);
        let signature =
            key.sign(Self::message(events, &position, &chain_hash, &signed_at).as_bytes());
        Self {
            events,
            position,
            chain_hash,
            signed_at,
            key_id: key_id(&key.verifying_key()),
            signature: BASE64.encode(signature.to_bytes()),
        }
    }

    pub fn signature_valid(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = BASE64.decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return false;
        };
        let message = Self::message(
            self.events,
            &self.position,
            &self.chain_hash,
            &self.signed_at,
        );
        key.verify(message.as_bytes(), &signature).is_ok()
    }
}

/// Chains every event; signs a checkpoint every `every` events when it has a key.
pub struct AuditChain {
    pub signer: Option<SigningKey>,
    pub every: i64,
}

#[async_trait]
impl Projector for AuditChain {
    fn name(&self) -> &'static str {
        "audit_chain_v1"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads_every_event(&self) -> bool {
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_chain_v1"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// The chain grows only at its head, in commit order: events at or before the head are
    /// already in it; the rest are hashed and linked in memory and written in one statement.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let (mut n, head_at, mut chain) = match head(conn).await? {
            Some((n, at, chain)) => (n, Some(at), chain),
            None => (0, None, GENESIS),
        };
        let mut rows = ChainRows::default();
        let mut signed = Vec::new();
        for event in events
            .iter()
            .filter(|e| head_at.is_none_or(|h| e.cursor > h))
        {
            n += 1;
            let event_hash = event_hash(event);
            chain = link(&chain, &event_hash);
            rows.push(event.cursor, n, event_hash, chain);
            if let Some(key) = &self.signer {
                if n % self.every.max(1) == 0 {
                    signed.push(Checkpoint::sign(key, n, event.cursor, &chain, Utc::now()));
                }
            }
        }
        rows.insert(conn).await?;
        for checkpoint in &signed {
            store_checkpoint(conn, checkpoint).await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct ChainRows {
    transaction_ids: Vec<String>,
    positions: Vec<i64>,
    numbers: Vec<i64>,
    event_hashes: Vec<Vec<u8>>,
    chain_hashes: Vec<Vec<u8>>,
}

impl ChainRows {
    fn push(&mut self, at: Cursor, n: i64, event_hash: Hash, chain_hash: Hash) {
        self.transaction_ids.push(at.transaction_id.to_string());
        self.positions.push(at.global_position);
        self.numbers.push(n);
        self.event_hashes.push(event_hash.to_vec());
        self.chain_hashes.push(chain_hash.to_vec());
    }

    async fn insert(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.numbers.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_chain_v1 (transaction_id, global_position, n, event_hash, chain_hash)
             SELECT t::xid8, p, n, e, c
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[])
                  AS r(t, p, n, e, c)",
        )
        .bind(&self.transaction_ids)
        .bind(&self.positions)
        .bind(&self.numbers)
        .bind(&self.event_hashes)
        .bind(&self.chain_hashes)
        .execute(conn)
        .await?;
        Ok(())
    }
}

fn to_hash(bytes: &[u8]) -> Hash {
    let mut hash = GENESIS;
    if bytes.len() == 32 {
        hash.copy_from_slice(bytes);
    }
    hash
}

/// The chain's newest entry: `(n, position, chain_hash)`.
async fn head(conn: &mut PgConnection) -> Result<Option<(i64, Cursor, Hash)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT n, transaction_id::text AS xid, global_position, chain_hash FROM audit_chain_v1
         ORDER BY n DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok((
            row.try_get("n")?,
            Cursor {
                transaction_id: parse_xid8(row.try_get("xid")?)?,
                global_position: row.try_get("global_position")?,
            },
            to_hash(row.try_get("chain_hash")?),
        ))
    })
    .transpose()
}

async fn store_checkpoint(
    conn: &mut PgConnection,
    checkpoint: &Checkpoint,
) -> Result<(), sqlx::Error> {
    let (tx, pos) = checkpoint
        .position
        .split_once('.')
        .ok_or_else(|| sqlx::Error::Protocol("checkpoint position".into()))?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (events, transaction_id, global_position, chain_hash,
                                        signed_at, key_id, signature)
         VALUES ($1, $2::text::xid8, $3::text::bigint, $4, $5, $6, $7)
         ON CONFLICT (events) DO NOTHING",
    )
    .bind(checkpoint.events)
    .bind(tx)
    .bind(pos)
    .bind(hex::decode(&checkpoint.chain_hash).unwrap_or_default())
    .bind(checkpoint.signed_at)
    .bind(&checkpoint.key_id)
    .bind(BASE64.decode(&checkpoint.signature).unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Signs the chain's head if no checkpoint covers it yet; answers how many events the chain
/// holds (all of them signed).
pub async fn sign_head(pool: &PgPool, key: &SigningKey) -> Result<i64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let Some((n, position, chain)) = head(&mut conn).await? else {
        return Ok(0);
    };
    let signed: Option<i64> = sqlx::query_scalar("SELECT max(events) FROM audit_checkpoints")
        .fetch_one(&mut *conn)
        .await?;
    if signed.is_none_or(|s| s < n) {
        let checkpoint = Checkpoint::sign(key, n, position, &chain, Utc::now());
        store_checkpoint(&mut conn, &checkpoint).await?;
    }
    Ok(n)
}

/// What one key signed: how many checkpoints, and the first and last (as chain lengths).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignedBy {
    pub key_id: String,
    pub checkpoints: i64,
    pub first_events: i64,
    pub last_events: i64,
}

/// The checkpoints each key signed, in the order the keys were first used.
pub async fn signed_by_key(pool: &PgPool) -> Result<Vec<SignedBy>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_id, count(*) AS checkpoints, min(events) AS first_events,
                max(events) AS last_events
         FROM audit_checkpoints GROUP BY key_id ORDER BY min(events)",
    )
    .fetch_all(pool)
    .await
}

pub async fn checkpoints(pool: &PgPool) -> Result<Vec<Checkpoint>, sqlx::Error> {
    checkpoints_between(pool, 0, i64::MAX).await
}

/// Checkpoints that sign more than `after` and at most `through` events.
async fn checkpoints_between(
    pool: &PgPool,
    after: i64,
    through: i64,
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT events, transaction_id::text AS xid, global_position, chain_hash, signed_at,
                key_id, signature
         FROM audit_checkpoints WHERE events > $1 AND events <= $2 ORDER BY events",
    )
    .bind(after)
    .bind(through)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Checkpoint {
                events: row.try_get("events")?,
                position: format!(
                    "{}.{}",
                    row.try_get::<String, _>("xid")?,
                    row.try_get::<i64, _>("global_position")?
                ),
                chain_hash: hex::encode(row.try_get::<Vec<u8>, _>("chain_hash")?),
                signed_at: row.try_get("signed_at")?,
                key_id: row.try_get("key_id")?,
                signature: BASE64.encode(row.try_get::<Vec<u8>, _>("signature")?),
            })
        })
        .collect()
}

/// What a check of the chain found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verification {
    pub ok: bool,
    pub events_checked: i64,
    /// The newest chained event's position and chain hash (hex).
    pub head: Option<Head>,
    /// The first event whose stored form, place or chain does not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_position: Option<String>,
    /// What was wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub checkpoints_verified: i64,
    /// Every event up to here is covered by a valid signature.
    pub signed_through: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Head {
    pub position: String,
    pub events: i64,
    pub chain_hash: String,
}

/// Walks a chain in order, online or from an export, and remembers the first thing wrong.
pub struct ChainCheck {
    keys: TrustedKeys,
    chain: Hash,
    n: i64,
    position: Option<String>,
    checkpoints: VecDeque<Checkpoint>,
    verified: i64,
    signed_through: Option<String>,
    bad: Option<(String, String)>,
}

impl ChainCheck {
    /// `checkpoints` in order of `events`; each is checked when the walk reaches it.
    pub fn new(keys: impl Into<TrustedKeys>, checkpoints: Vec<Checkpoint>) -> Self {
        Self {
            keys: keys.into(),
            chain: GENESIS,
            n: 0,
            position: None,
            checkpoints: checkpoints.into(),
            verified: 0,
            signed_through: None,
            bad: None,
        }
    }

    fn fail(&mut self, position: &str, problem: impl Into<String>) {
        if self.bad.is_none() {
            self.bad = Some((position.to_string(), problem.into()));
        }
    }

    /// One chain entry: its recorded number and hashes, and the event as stored now: the
    /// position it states and the hash of its canonical form (`None` when no event is stored at
    /// that position).
    pub fn entry(
        &mut self,
        position: &str,
        n: i64,
        stored_event_hash: &Hash,
        stored_chain_hash: &Hash,
        event: Option<(&str, Hash)>,
    ) {
        self.n += 1;
        if n != self.n {
            self.fail(
                position,
                format!("chain entry {n} where {} was due", self.n),
            );
        }
        let event_hash = match event {
            Some((stated, hash)) => {
                if stated != position {
                    self.fail(
                        position,
                        "the event is not at the position it was chained at",
                    );
                }
                if hash != *stored_event_hash {
                    self.fail(position, "the event differs from what was chained");
                }
                hash
            }
            None => {
                self.fail(position, "the chained event is missing from the log");
                *stored_event_hash
            }
        };
        self.chain = link(&self.chain, &event_hash);
        if self.chain != *stored_chain_hash {
            self.fail(position, "the chain does not link here");
        }
        self.position = Some(position.to_string());
        while self.checkpoints.front().is_some_and(|c| c.events <= self.n) {
            if let Some(checkpoint) = self.checkpoints.pop_front() {
                self.check_checkpoint(&checkpoint, position);
            }
        }
    }

    fn check_checkpoint(&mut self, checkpoint: &Checkpoint, position: &str) {
        if checkpoint.events != self.n || checkpoint.position != position {
            self.fail(
                position,
                "a checkpoint names an event the chain does not have",
            );
        } else if self.keys.get(&checkpoint.key_id).is_none() {
            let problem = format!(
                "a checkpoint is signed by key {}, which this verifier does not trust",
                checkpoint.key_id
            );
            self.fail(position, problem);
        } else if !self
            .keys
            .get(&checkpoint.key_id)
            .is_some_and(|key| checkpoint.signature_valid(key))
        {
            self.fail(
                position,
                "a checkpoint's signature is not valid for this key",
            );
        } else if checkpoint.chain_hash != hex::encode(self.chain) {
            // The chain was rewritten consistently up to here; the signature says otherwise.
            self.fail(position, "the chain differs from what a checkpoint signed");
        } else if self.bad.is_none() {
            self.verified += 1;
            self.signed_through = Some(position.to_string());
        }
    }

    /// An event in the log that the chain never included (inserted behind its back).
    pub fn unchained_event(&mut self, position: &str) {
        self.fail(position, "an event in the log is not in the chain");
    }

    pub fn finish(mut self) -> Verification {
        if let Some(checkpoint) = self.checkpoints.pop_front() {
            let position = checkpoint.position.clone();
            self.fail(
                &position,
                format!(
                    "a checkpoint signed {} events; the chain has {}",
                    checkpoint.events, self.n
                ),
            );
        }
        let (first_bad_position, problem) =
            self.bad.map_or((None, None), |(p, w)| (Some(p), Some(w)));
        Verification {
            ok: first_bad_position.is_none(),
            events_checked: self.n,
            head: self.position.map(|position| Head {
                position,
                events: self.n,
                chain_hash: hex::encode(self.chain),
            }),
            first_bad_position,
            problem,
            checkpoints_verified: self.verified,
            signed_through: self.signed_through,
        }
    }
}

const VERIFY_PAGE: i64 = 5000;

/// One chain entry with the event stored at its position now (`None` when there is none).
struct ChainEntry {
    n: i64,
    cursor: Cursor,
    event_hash: Hash,
    chain_hash: Hash,
    event: Option<StoredEvent>,
}

/// Chain entries numbered after `after` up to `through`, joined with the events table.
async fn chain_page(
    pool: &PgPool,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<ChainEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.n, c.transaction_id::text AS xid, c.global_position AS pos, c.event_hash,
                c.chain_hash, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
                e.event_version, e.payload, e.metadata
         FROM audit_chain_v1 c
         LEFT JOIN events e
           ON e.transaction_id = c.transaction_id AND e.global_position = c.global_position
         WHERE c.n > $1 AND c.n <= $2 ORDER BY c.n LIMIT $3",
    )
    .bind(after)
    .bind(through)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let cursor = Cursor {
                transaction_id: parse_xid8(row.try_get("xid")?)?,
                global_position: row.try_get("pos")?,
            };
            let stored = row
                .try_get::<Option<String>, _>("aggregate_type")?
                .is_some();
            Ok(ChainEntry {
                n: row.try_get("n")?,
                cursor,
                event_hash: to_hash(row.try_get("event_hash")?),
                chain_hash: to_hash(row.try_get("chain_hash")?),
                event: stored
                    .then(|| StoredEvent::from_row(row, cursor))
                    .transpose()?,
            })
        })
        .collect()
}

/// Recomputes the chain from the stored events and checks it against the chain table and every
/// signed checkpoint, in pages (constant memory).
pub async fn verify(
    pool: &PgPool,
    keys: impl Into<TrustedKeys>,
) -> Result<Verification, sqlx::Error> {
    verify_reporting(pool, keys, &Silent).await
}

/// `verify`, telling `progress` how many chain entries are checked after each page.
pub async fn verify_reporting(
    pool: &PgPool,
    keys: impl Into<TrustedKeys>,
    progress: &dyn Progress,
) -> Result<Verification, sqlx::Error> {
    let mut check = ChainCheck::new(keys, checkpoints(pool).await?);
    let total: i64 = sqlx::query_scalar("SELECT coalesce(max(n), 0) FROM audit_chain_v1")
        .fetch_one(pool)
        .await?;
    let total = u64::try_from(total).unwrap_or_default();
    let mut after = 0_i64;
    loop {
        let entries = chain_page(pool, after, i64::MAX, VERIFY_PAGE).await?;
        for entry in &entries {
            let position = entry.cursor.to_string();
            let event = entry
                .event
                .as_ref()
                .map(|e| (position.as_str(), event_hash(e)));
            check.entry(
                &position,
                entry.n,
                &entry.event_hash,
                &entry.chain_hash,
                event,
            );
            after = entry.n;
        }
        let done = u64::try_from(after).unwrap_or_default();
        progress.update("verify", done, total.max(done));
        if (entries.len() as i64) < VERIFY_PAGE {
            break;
        }
    }
    progress.finish("verify");
    // Events at or before the chain's head that the chain skipped were slipped in later.
    let unchained: Option<(String, i64)> = sqlx::query_as(
        "SELECT e.transaction_id::text, e.global_position FROM events e
         WHERE (e.transaction_id, e.global_position) <= (
                 SELECT c.transaction_id, c.global_position FROM audit_chain_v1 c
                 ORDER BY c.n DESC LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM audit_chain_v1 c
                           WHERE c.transaction_id = e.transaction_id
                             AND c.global_position = e.global_position)
         ORDER BY e.transaction_id, e.global_position LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    if let Some((tx, pos)) = unchained {
        check.unchained_event(&format!("{tx}.{pos}"));
    }
    Ok(check.finish())
}

/// One line of a chain export (NDJSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExportLine {
    /// A chained event in its canonical form, with its number and hashes (hex).
    Event {
        n: i64,
        event: Value,
        event_hash: String,
        chain_hash: String,
    },
    Checkpoint(Checkpoint),
}

/// Checks an export offline: every event re-hashed from its canonical form, the chain relinked,
/// every checkpoint's signature checked against the trusted key it names.
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    keys: impl Into<TrustedKeys>,
) -> Result<Verification, String> {
    let mut check = ChainCheck::new(keys, Vec::new());
    let mut pending: Vec<Checkpoint> = Vec::new();
    for (number, line) in lines.enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", number + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExportLine =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", number + 1))?;
        match parsed {
            ExportLine::Event {
                n,
                event,
                event_hash,
                chain_hash,
            } => {
                let position = event
                    .get("position")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let decode = |text: &str| to_hash(&hex::decode(text).unwrap_or_default());
                check.entry(
                    &position,
                    n,
                    &decode(&event_hash),
                    &decode(&chain_hash),
                    Some((&position, hash_canonical(&event))),
                );
            }
            ExportLine::Checkpoint(checkpoint) => pending.push(checkpoint),
        }
        // A checkpoint line follows the event it signs.
        for checkpoint in pending.drain(..) {
            let position = check.position.clone().unwrap_or_default();
            check.check_checkpoint(&checkpoint, &position);
        }
    }
    Ok(check.finish())
}

/// One page of the chain export after entry `after`: each event in canonical form with its
/// hashes, each checkpoint right after the event it signs. An event missing from the log is
/// exported as `null`, which an offline check reports.
pub async fn export_page(
    pool: &PgPool,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<ExportLine>, sqlx::Error> {
    let entries = chain_page(pool, after, through, limit).await?;
    let Some(last) = entries.last().map(|e| e.n) else {
        return Ok(Vec::new());
    };
    let mut signed: VecDeque<Checkpoint> = checkpoints_between(pool, after, last).await?.into();
    let mut lines = Vec::with_capacity(entries.len());
    for entry in entries {
        lines.push(ExportLine::Event {
            n: entry.n,
            event: entry.event.as_ref().map_or(Value::Null, canonical_event),
            event_hash: hex::encode(entry.event_hash),
            chain_hash: hex::encode(entry.chain_hash),
        });
        while signed.front().is_some_and(|c| c.events <= entry.n) {
            if let Some(checkpoint) = signed.pop_front() {
                lines.push(ExportLine::Checkpoint(checkpoint));
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(payload: Value, metadata: Value) -> StoredEvent {
        StoredEvent {
            cursor: Cursor {
                transaction_id: 7,
                global_position: 42,
            },
            aggregate_type: "account".into(),
            aggregate_id: "a\"b".into(),
            sequence: 3,
            event_type: "account.password.set".into(),
            event_version: "1.0".into(),
            payload: payload.into(),
            metadata: metadata.into(),
        }
    }

    #[test]
    fn the_canonical_form_sorts_keys_escapes_strings_and_digests_secrets_at_any_depth() {
        let stored = event(
            json!({"PasswordSet": {"z": [1, {"secret": "s", "b": true}], "password_hash": "h", "at": "é\n"}}),
            json!({"user_agent": null, "actor": "x", "n": -1.5}),
        );
        let digest = |field: &str| hex::encode(Sha256::digest(field.as_bytes()));
        let expected = format!(
            concat!(
                r#"{{"aggregate_id":"a\"b","aggregate_type":"account","#,
                r#""event_type":"account.password.set","event_version":"1.0","#,
                r#""metadata":{{"actor":"x","n":-1.5,"user_agent":null}},"#,
                r#""payload":{{"PasswordSet":{{"at":"é\n","password_hash":{{"sha256":"{}"}},"#,
                r#""z":[1,{{"b":true,"secret":{{"sha256":"{}"}}}}]}}}},"#,
                r#""position":"7.42","sequence":3}}"#
            ),
            digest("\"h\""),
            digest("\"s\""),
        );
        assert_eq!(
            String::from_utf8(canonical_event_json(&stored)).expect("canonical JSON is UTF-8"),
            expected
        );
        let hashed: Hash = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(event_hash(&stored), hashed);
        assert_eq!(hash_canonical(&canonical_event(&stored)), hashed);
    }
}
