//! Who may use the voice service: phones registering with digest authentication (the
//! registrar) and carriers' INVITEs accepted by source address or credentials.

use super::*;

impl Engine {
    pub(super) fn nonce(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let sign = digest::md5_hex(&format!("{now:x}:{}", self.nonce_secret));
        format!("{now:x}.{}", &sign[..16])
    }

    /// Whether a nonce is ours and fresh (five minutes).
    pub(super) fn nonce_fresh(&self, nonce: &str) -> bool {
        let Some((time, sign)) = nonce.split_once('.') else {
            return false;
        };
        let expected = digest::md5_hex(&format!("{time}:{}", self.nonce_secret));
        let Ok(issued) = u64::from_str_radix(time, 16) else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        expected.get(..16) == Some(sign) && now.saturating_sub(issued) <= 300
    }

    pub(super) fn challenge(
        &mut self,
        request: &Request,
        key: &Option<Key>,
        peer: Peer,
        stale: bool,
    ) {
        let tag = random();
        let mut response = Response::to(request, 401, reason(401), Some(&tag));
        response.headers.push(
            "WWW-Authenticate",
            &digest::challenge(REALM, &self.nonce(), stale),
        );
        self.respond(key, peer, response);
    }

    pub(super) async fn on_register(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let aor = request.headers.get("To").map(uri_of).unwrap_or_default();
        let Some(username) = user_of(aor).map(|u| u.to_owned()) else {
            self.reply(&request, &key, peer, 400);
            return;
        };
        let Some(credentials) = request.headers.get("Authorization").and_then(digest::parse) else {
            self.challenge(&request, &key, peer, false);
            return;
        };
        if !self.nonce_fresh(&credentials.nonce) {
            self.challenge(&request, &key, peer, true);
            return;
        }
        let phone = match Username::parse(&username) {
            Ok(name) if credentials.username == username => {
                match self.app.services.store.sip_phone(&name).await {
                    Ok(phone) => phone,
                    Err(error) => {
                        // The store failing is not a wrong password: the phone may retry.
                        tracing::error!(%error, "could not read a SIP phone's credentials");
                        self.reply(&request, &key, peer, 500);
                        return;
                    }
                }
            }
            _ => None,
        };
        let verified = phone.filter(|(_, ha1)| digest::verify(ha1, "REGISTER", &credentials));
        let Some((user, _)) = verified else {
            tracing::info!(%username, peer = %peer.addr, "SIP registration refused");
            self.reply(&request, &key, peer, 403);
            return;
        };
        let contact = request
            .headers
            .all("Contact")
            .first()
            .map(|c| c.to_string());
        let header_expires = request
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u64>().ok());
        let tag = random();
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
                    let mut response = Response::to(&request, 423, reason(423), Some(&tag));
                    response
                        .headers
                        .push("Min-Expires", &MIN_REGISTER_SECONDS.to_string());
                    self.respond(&key, peer, response);
                    return;
                } else {
                    let uri = uri_of(&c).to_owned();
                    tracing::info!(%username, contact = %uri, "SIP phone registered");
                    self.registrations.insert(
                        user,
                        Registration {
                            username: username.clone(),
                            contact: uri,
                            peer,
                            expires: Instant::now() + Duration::from_secs(expires),
                        },
                    );
                }
            }
        }
        let mut response = Response::to(&request, 200, "OK", Some(&tag));
        if let Some(registration) = self.registrations.get(&user) {
            let left = registration
                .expires
                .saturating_duration_since(Instant::now())
                .as_secs();
            response.headers.push(
                "Contact",
                &format!("<{}>;expires={left}", registration.contact),
            );
        }
        self.respond(&key, peer, response);
    }

    /// Where to send requests for a registered phone: the Contact's address when it is the
    /// address the registration came from, else (behind NAT) the source address itself.
    pub(super) fn phone_target(&mut self, user: UserId) -> Option<(String, Peer, String)> {
        let registration = self.registration(user)?;
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
        Some((
            registration.contact.clone(),
            peer,
            registration.username.clone(),
        ))
    }

    pub(super) fn registration(&mut self, user: UserId) -> Option<&Registration> {
        if self
            .registrations
            .get(&user)
            .is_some_and(|r| r.expires <= Instant::now())
        {
            self.registrations.remove(&user);
        }
        self.registrations.get(&user)
    }

    /// Whether an INVITE comes from an inbound trunk: by source address, or by digest
    /// credentials (challenged when missing).
    pub(super) fn trunk_allows(
        &mut self,
        request: &Request,
        peer: Peer,
        key: &Option<Key>,
    ) -> bool {
        let ip = peer.addr.ip();
        if self.directory.trunks.iter().any(|t| t.accepts_address(ip)) {
            return true;
        }
        let with_credentials: Vec<&Trunk> = self
            .directory
            .trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Inbound && t.username.is_some())
            .collect();
        if with_credentials.is_empty() {
            self.reply(request, key, peer, 403);
            return false;
        }
        let credentials = request
            .headers
            .get("Authorization")
            .or(request.headers.get("Proxy-Authorization"))
            .and_then(digest::parse);
        let Some(credentials) = credentials else {
            self.challenge(request, key, peer, false);
            return false;
        };
        if !self.nonce_fresh(&credentials.nonce) {
            self.challenge(request, key, peer, true);
            return false;
        }
        let good = with_credentials.iter().any(|t| {
            t.username.as_deref() == Some(credentials.username.as_str())
                && t.secret
                    .as_deref()
                    .is_some_and(|ha1| digest::verify(ha1, "INVITE", &credentials))
        });
        if !good {
            self.reply(request, key, peer, 403);
        }
        good
    }
}
