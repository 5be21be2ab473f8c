//! Who may use the voice service: agents' phones registering with digest authentication (the
//! registrar) and carriers' INVITEs accepted by source address or by credentials. Nonces are
//! signed with a secret and carry the time they were issued, so no nonce state is kept.

use crate::directory::Directory;
use crate::engine::reason;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
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
}

/// What an admission check decided.
pub enum Admission {
    Allowed,
    /// Answer the request with this (a challenge or a refusal).
    Refused(Response),
}

impl Registrar {
    pub fn new(secret: String) -> Self {
        Registrar {
            secret,
            registrations: HashMap::new(),
        }
    }

    fn nonce(&self, wall: DateTime<Utc>) -> String {
        let issued = wall.timestamp().max(0);
        let sign = digest::md5_hex(&format!("{issued:x}:{}", self.secret));
        format!("{issued:x}.{}", &sign[..16])
    }

    /// Whether a nonce is ours and fresh (five minutes).
    fn nonce_fresh(&self, nonce: &str, wall: DateTime<Utc>) -> bool {
        let Some((time, sign)) = nonce.split_once('.') else {
            return false;
        };
        let expected = digest::md5_hex(&format!("{time}:{}", self.secret));
        let Ok(issued) = i64::from_str_radix(time, 16) else {
            return false;
        };
        expected.get(..16) == Some(sign)
            && wall.timestamp().saturating_sub(issued) <= NONCE_LIFETIME_SECONDS
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
            &digest::challenge(REALM, &self.nonce(wall), stale),
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
    ) -> Response {
        let aor = request.headers.get("To").map(uri_of).unwrap_or_default();
        let Some(username) = user_of(aor).map(|u| u.to_owned()) else {
            return Response::to(request, 400, reason(400), Some(tag));
        };
        let Some(credentials) = request.headers.get("Authorization").and_then(digest::parse) else {
            return self.challenge(request, false, wall, tag);
        };
        if !self.nonce_fresh(&credentials.nonce, wall) {
            return self.challenge(request, true, wall, tag);
        }
        let verified = directory
            .phones
            .get(&username)
            .filter(|_| credentials.username == username)
            .filter(|(_, ha1)| digest::verify(ha1, "REGISTER", &credentials));
        let Some((user, _)) = verified else {
            tracing::info!(%username, peer = %peer.addr, "SIP registration refused");
            return Response::to(request, 403, reason(403), Some(tag));
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
                    return response;
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
        response
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

    /// Whether an INVITE comes from an inbound trunk: by source address, or by digest
    /// credentials (challenged when missing).
    pub fn admit_trunk(
        &self,
        wall: DateTime<Utc>,
        request: &Request,
        peer: Peer,
        directory: &Directory,
        tag: &str,
    ) -> Admission {
        let ip = peer.addr.ip();
        if directory.trunks.iter().any(|t| t.accepts_address(ip)) {
            return Admission::Allowed;
        }
        let with_credentials: Vec<&Trunk> = directory
            .trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Inbound && t.username.is_some())
            .collect();
        if with_credentials.is_empty() {
            return Admission::Refused(Response::to(request, 403, reason(403), Some(tag)));
        }
        let credentials = request
            .headers
            .get("Authorization")
            .or(request.headers.get("Proxy-Authorization"))
            .and_then(digest::parse);
        let Some(credentials) = credentials else {
            return Admission::Refused(self.challenge(request, false, wall, tag));
        };
        if !self.nonce_fresh(&credentials.nonce, wall) {
            return Admission::Refused(self.challenge(request, true, wall, tag));
        }
        let good = with_credentials.iter().any(|t| {
            t.username.as_deref() == Some(credentials.username.as_str())
                && t.secret
                    .as_deref()
                    .is_some_and(|ha1| digest::verify(ha1, "INVITE", &credentials))
        });
        if good {
            Admission::Allowed
        } else {
            Admission::Refused(Response::to(request, 403, reason(403), Some(tag)))
        }
    }
}
