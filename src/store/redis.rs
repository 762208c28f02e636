//! [`RedisStore`]: the backend for several replicas sharing one Redis (standalone or
//! primary/replica; not Redis Cluster, since the scripts touch keys they derive themselves).
//!
//! Keys, all under the configured prefix `{p}`:
//! - `{p}:conv:{key}`: JSON of the [`ConversationRecord`], with a native expiry at the use
//!   stamp plus the TTL (refreshed by every put);
//! - `{p}:conv:lru`: sorted set, member = key, score = use stamp (ms): the size cap and expiry;
//! - `{p}:conv:meta`: hash, field = key, value = the same JSON, so that `purge_expired` can
//!   return records whose own key Redis already expired;
//! - `{p}:acct:{seed_hash}`: JSON of the [`AccountRecord`], listed through the set
//!   `{p}:accounts`;
//! - `{p}:secret:{name}`: the bytes of a secret (see [`Store::secret`]), no expiry.
//! - `{p}:lock:{seed_hash}`: an account lock, the holder's random value with a native expiry
//!   (`SET NX PX`), released by a compare-and-delete script.
//!
//! The secret's compare-and-set reads the record, checks its secret here, and writes the
//! changed record with a script that replaces it only if it is still byte for byte the JSON
//! that was read (a WATCH would need a connection of its own: the manager multiplexes one).
//!
//! Put, take and purge are Lua scripts, so each is atomic across replicas: two replicas never
//! both take the same mapping, and the three conversation keys never drift apart. (A script
//! rather than GETDEL, so that the lru/meta entries go in the same step; the scripts need
//! Redis >= 5 for ZPOPMIN.) Time comes from the caller's clock (`now_ms()`), like the other
//! backends, so replicas should run NTP.
//!
//! Redis being down must not take the proxy down: [`RedisStore::new`] only parses the URL; the
//! connection manager is built on first use and rebuilt on a later call if that failed, and
//! every call is bounded by [`OP_TIMEOUT`], failing with [`StoreError::Redis`] (callers then
//! treat the conversation as new).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Cmd};

use super::{
    AccountLock, AccountRecord, ConversationRecord, Store, StoreError, StoreLimits, now_ms,
    redacted_url, ttl_ms,
};

/// Upper bound of one store call, connection included.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1500);
/// Upper bound of one TCP connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// About 34 years; longer TTLs are clamped to it.
const MAX_TTL_MS: u64 = 1 << 40;
/// How many expired mappings one purge script removes before yielding Redis to others.
const PURGE_BATCH: usize = 500;

/// KEYS: conv key, lru, meta. ARGV: key, json, now, ttl, max, conv key prefix.
const PUT_SCRIPT: &str = r"
local now = tonumber(ARGV[3])
local stamp = now
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= stamp then stamp = tonumber(top[2]) + 1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[4]) + stamp - now)
redis.call('ZADD', KEYS[2], stamp, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do
    redis.call('DEL', ARGV[6] .. oldest[i])
    redis.call('HDEL', KEYS[3], oldest[i])
  end
end
return 1
";

/// KEYS: conv key, lru, meta. ARGV: key, now, ttl. Returns the JSON, or nil when absent or
/// expired (the mapping is deleted either way).
const TAKE_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
local stamp = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if value and (not stamp or tonumber(stamp) + tonumber(ARGV[3]) > tonumber(ARGV[2])) then
  return value
end
return false
";

/// KEYS: lru, meta. ARGV: cutoff (inclusive), batch, conv key prefix.
/// Returns {number of members removed, {json...}}.
const PURGE_SCRIPT: &str = r"
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(members) do
  local value = redis.call('HGET', KEYS[2], member)
  if value then table.insert(out, value) end
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[2], member)
  redis.call('DEL', ARGV[3] .. member)
end
return {#members, out}
";

/// KEYS: lock key. ARGV: holder. Deletes the lock only if this holder still has it.
const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// KEYS: account key. ARGV: the JSON read, the JSON to write. Writes only if unchanged.
const SWAP_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Rounds of the secret's compare-and-set when another field of the record changes under it
/// (the admin disabling the account, say) before the secret check gives an answer.
const SWAP_ROUNDS: usize = 8;

/// Redis-backed store; one per process, shared through an `Arc`.
pub struct RedisStore {
    client: Client,
    prefix: String,
    limits: StoreLimits,
    /// Built on first use; `None` until a connection succeeded. The async mutex is held
    /// across the connect so that concurrent first calls make one connection, not many.
    manager: tokio::sync::Mutex<Option<ConnectionManager>>,
}

/// `EVAL script 3 k1 k2 k3` with the given keys; arguments are appended by the caller. (The
/// crate's `Script` helper needs its `script` feature; EVAL with the short text is enough.)
fn eval(script: &str, keys: &[String]) -> Cmd {
    let mut cmd = ::redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len()).arg(keys);
    cmd
}

fn redis_err(e: ::redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Decode(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))
}

impl RedisStore {
    /// Checks the URL now (a bad one is a configuration error) but does not connect.
    pub fn new(url: &str, prefix: &str, limits: StoreLimits) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| {
            StoreError::Redis(format!(
                "REDIS_URL {} is not a valid redis URL: {e}",
                redacted_url(url)
            ))
        })?;
        Ok(RedisStore {
            client,
            prefix: prefix.to_string(),
            limits,
            manager: tokio::sync::Mutex::new(None),
        })
    }

    fn conv_key(&self, key: &str) -> String {
        format!("{}:conv:{key}", self.prefix)
    }
    fn conv_prefix(&self) -> String {
        format!("{}:conv:", self.prefix)
    }
    fn lru_key(&self) -> String {
        format!("{}:conv:lru", self.prefix)
    }
    fn meta_key(&self) -> String {
        format!("{}:conv:meta", self.prefix)
    }
    fn account_key(&self, seed_hash: &str) -> String {
        format!("{}:acct:{seed_hash}", self.prefix)
    }
    fn accounts_key(&self) -> String {
        format!("{}:accounts", self.prefix)
    }
    fn secret_key(&self, name: &str) -> String {
        format!("{}:secret:{name}", self.prefix)
    }

    fn lock_key(&self, seed_hash: &str) -> String {
        format!("{}:lock:{seed_hash}", self.prefix)
    }

    /// The shared connection, building it when there is none yet (or the last try failed).
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(redis_err)?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    /// Runs one operation with a connection, the whole bounded by [`OP_TIMEOUT`].
    async fn with_conn<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let call = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        tokio::time::timeout(OP_TIMEOUT, call).await.map_err(|_| {
            StoreError::Redis(format!("no answer within {} ms", OP_TIMEOUT.as_millis()))
        })?
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError> {
        let json = encode(record)?;
        let max = self.limits.max_conversations;
        // PX must be positive, and Lua numbers are doubles: keep the TTL in a sane range.
        let ttl = ttl_ms(&self.limits).clamp(1, MAX_TTL_MS);
        self.with_conn(|mut conn| async move {
            let keys = [self.conv_key(key), self.lru_key(), self.meta_key()];
            let _: i64 = eval(PUT_SCRIPT, &keys)
                .arg(key)
                .arg(json)
                .arg(now_ms())
                .arg(ttl)
                .arg(max)
                .arg(self.conv_prefix())
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(())
        })
        .await
    }

    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let json: Option<String> = self
            .with_conn(|mut conn| async move {
                let keys = [self.conv_key(key), self.lru_key(), self.meta_key()];
                eval(TAKE_SCRIPT, &keys)
                    .arg(key)
                    .arg(now_ms())
                    .arg(ttl_ms(&self.limits))
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)
            })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        // Before the epoch plus one TTL nothing can be expired: count up to -1 (no member).
        let cutoff = now_ms()
            .checked_sub(ttl_ms(&self.limits))
            .map_or(-1, |c| i64::try_from(c).unwrap_or(i64::MAX));
        self.with_conn(|mut conn| async move {
            let lru = self.lru_key();
            let (total, expired): (usize, usize) = ::redis::pipe()
                .atomic()
                .zcard(&lru)
                .zcount(&lru, "-inf", cutoff)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            Ok(total.saturating_sub(expired))
        })
        .await
    }

    async fn purge_expired(&self) -> Result<Vec<ConversationRecord>, StoreError> {
        let Some(cutoff) = now_ms().checked_sub(ttl_ms(&self.limits)) else {
            return Ok(Vec::new());
        };
        let mut purged = Vec::new();
        // One batch per call of the timeout, so a large backlog cannot trip it.
        loop {
            let (removed, jsons): (usize, Vec<String>) = self
                .with_conn(|mut conn| async move {
                    eval(PURGE_SCRIPT, &[self.lru_key(), self.meta_key()])
                        .arg(cutoff)
                        .arg(PURGE_BATCH)
                        .arg(self.conv_prefix())
                        .query_async(&mut conn)
                        .await
                        .map_err(redis_err)
                })
                .await?;
            // A record that no longer decodes is dropped with the rest; nothing to return.
            purged.extend(jsons.iter().filter_map(|json| decode(json).ok()));
            if removed < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    async fn put_account(&self, record: &AccountRecord) -> Result<(), StoreError> {
        let json = encode(record)?;
        self.with_conn(|mut conn| async move {
            ::redis::pipe()
                .atomic()
                .set(self.account_key(&record.seed_hash), json)
                .ignore()
                .sadd(self.accounts_key(), &record.seed_hash)
                .ignore()
                .exec_async(&mut conn)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let json: Option<String> = self
            .with_conn(|mut conn| async move {
                conn.get(self.account_key(seed_hash))
                    .await
                    .map_err(redis_err)
            })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let jsons: Vec<Option<String>> = self
            .with_conn(|mut conn| async move {
                let mut seeds: Vec<String> = conn
                    .smembers(self.accounts_key())
                    .await
                    .map_err(redis_err)?;
                if seeds.is_empty() {
                    return Ok(Vec::new());
                }
                seeds.sort();
                let keys: Vec<String> = seeds.iter().map(|s| self.account_key(s)).collect();
                ::redis::cmd("MGET")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)
            })
            .await?;
        jsons.iter().flatten().map(|json| decode(json)).collect()
    }

    async fn remove_account(&self, seed_hash: &str) -> Result<(), StoreError> {
        self.with_conn(|mut conn| async move {
            ::redis::pipe()
                .atomic()
                .del(self.account_key(seed_hash))
                .ignore()
                .srem(self.accounts_key(), seed_hash)
                .ignore()
                .exec_async(&mut conn)
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = self.secret_key(name);
        let (kept,): (Option<Vec<u8>>,) = self
            .with_conn(|mut conn| async move {
                // SET NX keeps the first value; the GET in the same MULTI reads the winner.
                ::redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(fresh)
                    .arg("NX")
                    .ignore()
                    .get(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)
            })
            .await?;
        kept.ok_or_else(|| StoreError::Redis("the secret vanished right after it was set".into()))
    }

    async fn lock_account(
        &self,
        seed_hash: &str,
        ttl: Duration,
    ) -> Result<Option<AccountLock>, StoreError> {
        let lock = AccountLock::new(seed_hash);
        // PX must be positive.
        let ttl = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_TTL_MS);
        let holder = &lock.holder;
        let taken: Option<String> = self
            .with_conn(|mut conn| async move {
                ::redis::cmd("SET")
                    .arg(self.lock_key(seed_hash))
                    .arg(holder)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)
            })
            .await?;
        Ok(taken.map(|_| lock))
    }

    async fn unlock_account(&self, lock: &AccountLock) -> Result<bool, StoreError> {
        let deleted: i64 = self
            .with_conn(|mut conn| async move {
                eval(UNLOCK_SCRIPT, &[self.lock_key(&lock.seed_hash)])
                    .arg(&lock.holder)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)
            })
            .await?;
        Ok(deleted == 1)
    }

    async fn swap_account_secret(
        &self,
        seed_hash: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let key = self.account_key(seed_hash);
        self.with_conn(|mut conn| async move {
            for _ in 0..SWAP_ROUNDS {
                let read: Option<String> = conn.get(&key).await.map_err(redis_err)?;
                let Some(read) = read else { return Ok(false) };
                let mut record: AccountRecord = decode(&read)?;
                if record.client_cookie != expected {
                    return Ok(false);
                }
                record.client_cookie = new.to_string();
                record.updated_ms = now_ms();
                let written: i64 = eval(SWAP_SCRIPT, std::slice::from_ref(&key))
                    .arg(&read)
                    .arg(encode(&record)?)
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_err)?;
                if written == 1 {
                    return Ok(true);
                }
            }
            Err(StoreError::Redis(format!(
                "the record of account {seed_hash} changed {SWAP_ROUNDS} times during one compare-and-set"
            )))
        })
        .await
    }
}
