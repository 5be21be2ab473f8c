//! Who may use the voice service: agents' phones registering with digest authentication (the
//! registrar) and carriers' INVITEs accepted by source address or by credentials.
//!
//! Digest (RFC 2617, RFC 7616 §3.3 and §5.5): nonces are signed with a secret and carry the
//! time they were issued; only ours, unexpired, are accepted, and only ours earn `stale=true`.
//! Each nonce's highest nonce count is kept until it expires, so a captured answer cannot be
//! replayed (an answer without `qop` makes its nonce single-use), and the answer's `uri` must
//! be the request's own Request-URI. Failed answers are throttled by source and by account
//! (`switchboard_core::throttle`) and logged on the `security` target in one line that fail2ban
//! can match: `SIP authentication failed source=<address> user=<name> method=<method>`.

use crate::directory::Directory;
use crate::engine::reason;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use switchboard_core::throttle::{Throttle, Verdict};
use switchboard_core::voice::{Trunk, TrunkDirection};
use switchboard_core::UserId;
use switchboard_sip::fields::{self, uri_of, user_of};
use switchboard_sip::transaction::Peer;
use switchboard_sip::{digest, Request, Response, Transport as Wire};

pub const REALM: &str = "switchboard";
const NONCE_LIFETIME_SECONDS: i64 = 300;
const MAX_REGISTER_SECONDS: u64 = 3600;
const MIN_REGISTER_SECONDS: u64 = 60;

/// A phone's current binding.
#[derive(Clone, Debug)]
pub struct Registration {
    pub username: String,
    /// The Contact URI it registered.
    pub contact: String,
    /// Where the REGISTER came from.
    pub peer: Peer,
    pub expires: Instant,
}

/// Where to send an INVITE for a registered phone.
#[derive(Clone, Debug)]
pub struct PhoneTarget {
    pub uri: String,
    pub peer: Peer,
    pub username: String,
}

pub struct Registrar {
    secret: String,
    registrations: HashMap<UserId, Registration>,
    /// Nonces answered so far: the highest nonce count seen, and when the nonce was issued.
    used: HashMap<String, (u32, i64)>,
    throttle: Throttle,
}

/// What an admission check decided.
pub enum Admission {
    /// Through this trunk.
    Allowed(Trunk),
    /// From this agent's SIP phone, proved by its digest credentials: a call they dial.
    Phone(switchboard_core::UserId),
    /// Answer the request with this (a challenge or a refusal), after `delay`.
    Refused(Answer),
}

/// A response and how long to hold it back (a throttled source waits for its answer).
pub struct Answer {
    pub response: Response,
    pub delay: std::time::Duration,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer {
            response,
            delay: std::time::Duration::ZERO,
        }
    }
}

/// What a nonce in an answer is.
#[derive(PartialEq, Eq)]
enum NonceCheck {
    Fresh,
    /// Ours, but expired or already used with this count: a new challenge, `stale=true`.
    Stale,
    /// Not ours: a new challenge, not stale.
    Forged,
}

/// How the credentials in a request fared.
enum Proof {
    /// Ask for them (none given, or a nonce to renew).
    Challenge {
        stale: bool,
    },
    /// Malformed: the `uri` is not the Request-URI.
    Bad,
    Refused,
    /// Throttled: refused without looking.
    Throttled(std::time::Duration),
    Proved,
}

impl Registrar {
    pub fn new(secret: String) -> Self {
        Registrar {
            secret,
            registrations: HashMap::new(),
            used: HashMap::new(),
            throttle: Throttle::default(),
        }
    }

    /// A new nonce: when it was issued, a random salt (every challenge's nonce is its own),
    /// and a signature over both.
    fn nonce(&self, wall: DateTime<Utc>, salt: &str) -> String {
        let issued = wall.timestamp().max(0);
        let salt: String = salt
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        let sign = digest::md5_hex(&format!("{issued:x}:{salt}:{}", self.secret));
        format!("{issued:x}.{salt}.{}", &sign[..16])
    }

    fn nonce_check(&self, credentials: &digest::Credentials, wall: DateTime<Utc>) -> NonceCheck {
        let mut parts = credentials.nonce.split('.');
        let (Some(time), Some(salt), Some(sign), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return NonceCheck::Forged;
        };
        let expected = digest::md5_hex(&format!("{time}:{salt}:{}", self.secret));
        let Ok(issued) = i64::from_str_radix(time, 16) else {
            return NonceCheck::Forged;
        };
        if expected.get(..16) != Some(sign) {
            return NonceCheck::Forged;
        }
        if wall.timestamp().saturating_sub(issued) > NONCE_LIFETIME_SECONDS {
            return NonceCheck::Stale;
        }
        let count = nonce_count(credentials);
        match self.used.get(&credentials.nonce) {
            Some((last, _)) if count <= *last => NonceCheck::Stale,
            _ => NonceCheck::Fresh,
        }
    }

    /// Notes a nonce's count once its answer proved right; forgets expired nonces.
    fn spend(&mut self, credentials: &digest::Credentials, wall: DateTime<Utc>) {
        let issued = credentials
            .nonce
            .split_once('.')
            .and_then(|(t, _)| i64::from_str_radix(t, 16).ok())
            .unwrap_or(0);
        if self.used.len() >= 4096 {
            let now = wall.timestamp();
            self.used
                .retain(|_, (_, at)| now.saturating_sub(*at) <= NONCE_LIFETIME_SECONDS);
        }
        self.used.insert(
            credentials.nonce.clone(),
            (nonce_count(credentials), issued),
        );
    }

    /// Checks the credentials a request carries against `expected` (the HA1s that would
    /// prove it), in order: throttle, nonce, URI binding, the answer, replay.
    fn prove(
        &mut self,
        wall: DateTime<Utc>,
        request: &Request,
        credentials: Option<&digest::Credentials>,
        peer: Peer,
        verify: impl Fn(&digest::Credentials) -> bool,
    ) -> Proof {
        let Some(credentials) = credentials else {
            return Proof::Challenge { stale: false };
        };
        let source = peer.addr.ip();
        if let Verdict::Refuse(retry) = self.throttle.check(source, &credentials.username, wall) {
            return Proof::Throttled(retry.to_std().unwrap_or_default());
        }
        match self.nonce_check(credentials, wall) {
            NonceCheck::Forged => return Proof::Challenge { stale: false },
            NonceCheck::Stale => return Proof::Challenge { stale: true },
            NonceCheck::Fresh => {}
        }
        if !credentials
            .uri
            .trim()
            .eq_ignore_ascii_case(request.uri.trim())
        {
            return Proof::Bad;
        }
        if !verify(credentials) {
            self.throttle.failure(source, &credentials.username, wall);
            tracing::warn!(
                target: "security",
                "SIP authentication failed source={} user={} method={}",
                source,
                credentials.username.replace(char::is_whitespace, "_"),
                request.method.as_str()
            );
            return Proof::Refused;
        }
        self.throttle.success(source, &credentials.username, wall);
        self.spend(credentials, wall);
        Proof::Proved
    }

    /// The delay a refusal waits before it is sent: it grows with the failures from the source
    /// and for the account, so guessing is slow even where it is not refused yet.
    fn refusal_delay(
        &self,
        source: IpAddr,
        account: &str,
        wall: DateTime<Utc>,
    ) -> std::time::Duration {
        match self.throttle.check(source, account, wall) {
            Verdict::Delay(delay) => delay.to_std().unwrap_or_default(),
            _ => std::time::Duration::ZERO,
        }
    }

    /// The answer for a proof that did not prove.
    fn refusal(
        &self,
        proof: Proof,
        request: &Request,
        peer: Peer,
        account: &str,
        wall: DateTime<Utc>,
        tag: &str,
    ) -> Answer {
        match proof {
            Proof::Challenge { stale } => self.challenge(request, stale, wall, tag).into(),
            Proof::Bad => {
                let mut response = Response::to(request, 400, reason(400), Some(tag));
                response.headers.push(
                    "Warning",
                    "399 switchboard \"the digest uri is not the Request-URI\"",
                );
                response.into()
            }
            Proof::Refused => Answer {
                response: Response::to(request, 403, reason(403), Some(tag)),
                delay: self.refusal_delay(peer.addr.ip(), account, wall),
            },
            Proof::Throttled(retry) => {
                let mut response = Response::to(request, 503, reason(503), Some(tag));
                response
                    .headers
                    .push("Retry-After", &retry.as_secs().max(1).to_string());
                response.into()
            }
            Proof::Proved => Response::to(request, 500, reason(500), Some(tag)).into(),
        }
    }

    fn challenge(
        &self,
        request: &Request,
        stale: bool,
        wall: DateTime<Utc>,
        tag: &str,
    ) -> Response {
        let mut response = Response::to(request, 401, reason(401), Some(tag));
        response.headers.push(
            "WWW-Authenticate",
            &digest::challenge(REALM, &self.nonce(wall, tag), stale),
        );
        response
    }

    /// Answers a REGISTER: challenges it, refuses it, or binds (or removes) the phone.
    pub fn register(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        request: &Request,
        peer: Peer,
        directory: &Directory,
        tag: &str,
    ) -> Answer {
        let aor = request.headers.get("To").map(uri_of).unwrap_or_default();
        let Some(username) = user_of(aor).map(fields::unescape) else {
            return Response::to(request, 400, reason(400), Some(tag)).into();
        };
        let credentials = request.headers.get("Authorization").and_then(digest::parse);
        let phone = directory.phones.get(&username);
        let proof = self.prove(wall, request, credentials.as_ref(), peer, |c| {
            c.username == username
                && phone.is_some_and(|(_, ha1)| digest::verify(ha1, "REGISTER", c))
        });
        let Proof::Proved = proof else {
            if matches!(proof, Proof::Refused) {
                tracing::info!(%username, peer = %peer.addr, "SIP registration refused");
            }
            return self.refusal(proof, request, peer, &username, wall, tag);
        };
        let Some((user, _)) = phone else {
            return Response::to(request, 403, reason(403), Some(tag)).into();
        };
        let user = *user;
        let contact = request
            .headers
            .all("Contact")
            .first()
            .map(|c| c.to_string());
        let header_expires = request
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u64>().ok());
        match contact {
            None => {}
            Some(c) if c.trim() == "*" => {
                self.registrations.remove(&user);
            }
            Some(c) => {
                let expires = fields::param(&c, "expires")
                    .and_then(|e| e.parse::<u64>().ok())
                    .or(header_expires)
                    .unwrap_or(MAX_REGISTER_SECONDS)
                    .min(MAX_REGISTER_SECONDS);
                if expires == 0 {
                    self.registrations.remove(&user);
                } else if expires < MIN_REGISTER_SECONDS {
                    let mut response = Response::to(request, 423, reason(423), Some(tag));
                    response
                        .headers
                        .push("Min-Expires", &MIN_REGISTER_SECONDS.to_string());
                    return response.into();
                } else {
                    let uri = uri_of(&c).to_owned();
                    tracing::info!(%username, contact = %uri, "SIP phone registered");
                    self.registrations.insert(
                        user,
                        Registration {
                            username: username.clone(),
                            contact: uri,
                            peer,
                            expires: now + Duration::from_secs(expires),
                        },
                    );
                }
            }
        }
        let mut response = Response::to(request, 200, "OK", Some(tag));
        if let Some(registration) = self.registrations.get(&user) {
            let left = registration
                .expires
                .saturating_duration_since(now)
                .as_secs();
            response.headers.push(
                "Contact",
                &format!("<{}>;expires={left}", registration.contact),
            );
        }
        response.into()
    }

    /// Where to send requests for a registered phone: the Contact's address when it is the
    /// address the registration came from, else (behind NAT) the source address itself.
    pub fn target(&mut self, now: Instant, user: UserId) -> Option<PhoneTarget> {
        if self
            .registrations
            .get(&user)
            .is_some_and(|r| r.expires <= now)
        {
            self.registrations.remove(&user);
        }
        let registration = self.registrations.get(&user)?;
        let mut peer = registration.peer;
        if let Some((host, port)) = fields::host_port_of(&registration.contact) {
            if host.parse::<IpAddr>().ok() == Some(peer.addr.ip()) {
                peer.addr = SocketAddr::new(peer.addr.ip(), port.unwrap_or(5060));
            }
        }
        if registration
            .contact
            .to_ascii_lowercase()
            .contains("transport=tcp")
        {
            peer.transport = Wire::Tcp;
        }
        Some(PhoneTarget {
            uri: registration.contact.clone(),
            peer,
            username: registration.username.clone(),
        })
    }

    /// Registered phones now: user, contact URI, source address.
    pub fn list(&self, now: Instant) -> Vec<(UserId, String, SocketAddr)> {
        let mut list: Vec<_> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.expires > now)
            .map(|(user, r)| (*user, r.contact.clone(), r.peer.addr))
            .collect();
        list.sort_by_key(|(user, _, _)| *user);
        list
    }

    /// Whether an INVITE comes from an inbound trunk (by source address, or by digest
    /// credentials, challenged when missing) or from an agent's phone dialling out. With
    /// `phone_first` (the INVITE is for no number of the center) a phone account it names is
    /// tried before the trunks' source addresses, so a phone on a network a trunk admits can
    /// still dial out.
    pub fn admit_trunk(
        &mut self,
        wall: DateTime<Utc>,
        request: &Request,
        peer: Peer,
        directory: &Directory,
        tag: &str,
        phone_first: bool,
    ) -> Admission {
        let ip = peer.addr.ip();
        if phone_first {
            if let Some(admission) = self.admit_phone(wall, request, peer, directory, tag) {
                return admission;
            }
        }
        if let Some(trunk) = directory.trunks.iter().find(|t| t.accepts_address(ip)) {
            return Admission::Allowed(trunk.clone());
        }
        if let Some(admission) = self.admit_phone(wall, request, peer, directory, tag) {
            return admission;
        }
        let with_credentials: Vec<&Trunk> = directory
            .trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Inbound && t.username.is_some())
            .collect();
        self.admit_by_credentials(wall, request, peer, &with_credentials, tag)
    }

    /// An agent's phone dialling out: its account is in the credentials, or (before the
    /// challenge) in From; `None` when the request names no phone account.
    fn admit_phone(
        &mut self,
        wall: DateTime<Utc>,
        request: &Request,
        peer: Peer,
        directory: &Directory,
        tag: &str,
    ) -> Option<Admission> {
        let credentials = credentials_of(request);
        let account = credentials
            .as_ref()
            .map(|c| c.username.clone())
            .or_else(|| {
                request
                    .headers
                    .get("From")
                    .map(switchboard_sip::fields::uri_of)
                    .and_then(switchboard_sip::fields::user_of)
                    .map(str::to_owned)
            });
        if let Some((account, (agent, ha1))) = account
            .as_deref()
            .and_then(|a| directory.phones.get(a).map(|p| (a, p)))
        {
            let (agent, ha1) = (*agent, ha1.clone());
            let proof = self.prove(wall, request, credentials.as_ref(), peer, |c| {
                c.username == account && digest::verify(&ha1, "INVITE", c)
            });
            return Some(match proof {
                Proof::Proved => Admission::Phone(agent),
                proof => Admission::Refused(self.refusal(proof, request, peer, account, wall, tag)),
            });
        }
        None
    }

    /// An inbound trunk proved by its digest credentials (challenged when missing).
    fn admit_by_credentials(
        &mut self,
        wall: DateTime<Utc>,
        request: &Request,
        peer: Peer,
        with_credentials: &[&Trunk],
        tag: &str,
    ) -> Admission {
        if with_credentials.is_empty() {
            return Admission::Refused(Response::to(request, 403, reason(403), Some(tag)).into());
        }
        let credentials = credentials_of(request);
        let account = credentials
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_default();
        let proves = |t: &&Trunk, c: &digest::Credentials| {
            t.username.as_deref() == Some(c.username.as_str())
                && t.secret
                    .as_deref()
                    .is_some_and(|ha1| digest::verify(ha1, "INVITE", c))
        };
        let proof = self.prove(wall, request, credentials.as_ref(), peer, |c| {
            with_credentials.iter().any(|t| proves(t, c))
        });
        match proof {
            Proof::Proved => {
                let trunk = credentials
                    .as_ref()
                    .and_then(|c| with_credentials.iter().find(|t| proves(t, c)));
                match trunk {
                    Some(trunk) => Admission::Allowed((*trunk).clone()),
                    None => Admission::Refused(
                        Response::to(request, 403, reason(403), Some(tag)).into(),
                    ),
                }
            }
            proof => Admission::Refused(self.refusal(proof, request, peer, &account, wall, tag)),
        }
    }
}

/// The digest credentials a request carries, if any.
fn credentials_of(request: &Request) -> Option<digest::Credentials> {
    request
        .headers
        .get("Authorization")
        .or(request.headers.get("Proxy-Authorization"))
        .and_then(digest::parse)
}

/// A credential's nonce count (`nc`, hex); 0 for an answer without `qop`, which may then be
/// used once only.
fn nonce_count(credentials: &digest::Credentials) -> u32 {
    credentials
        .nc
        .as_deref()
        .and_then(|nc| u32::from_str_radix(nc, 16).ok())
        .unwrap_or(0)
}
