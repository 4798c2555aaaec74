//! Checking a configuration once, with every problem reported, into the settings that
//! `serve` and `verify --config` build from.

use super::*;

impl Config {
    /// Checks everything and applies defaults; the error lists every problem, one a line.
    pub fn validate(&self) -> anyhow::Result<ServeSettings> {
        self.validate_with(true, Purpose::Serve)
    }

    /// For `signet verify --config`: the trust material and registry settings, checked like
    /// [`Config::validate`] but without the server's parts (TLS, listeners), which a
    /// command-line verification does not use.
    pub fn validate_for_verify(&self) -> anyhow::Result<VerifySettings> {
        let settings = self.validate_with(true, Purpose::Verify)?;
        Ok(VerifySettings {
            trust_policy: settings.trust_policy,
            trust_store: settings.trust_store,
            namespaces: settings.namespaces,
            engine: settings.engine,
        })
    }

    /// [`Config::validate`] without looking at the file system: every check but "the named
    /// file exists". For configurations made for another machine (the Helm chart's).
    pub fn validate_schema(&self) -> anyhow::Result<ServeSettings> {
        self.validate_with(false, Purpose::Serve)
    }

    fn validate_with(&self, check_files: bool, purpose: Purpose) -> anyhow::Result<ServeSettings> {
        let serving = purpose == Purpose::Serve;
        let exist = move |errors: &mut Vec<String>, key: &str, path: &Path, dir: bool| {
            if check_files {
                must_exist(errors, key, path, dir)
            }
        };
        let mut errors: Vec<String> = Vec::new();
        let addr = |key: &str, v: Option<&str>, default: Option<&str>, errors: &mut Vec<String>| {
            let v = v.or(default)?;
            match v.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    errors.push(format!("{key}: {v:?} is not an address like 0.0.0.0:8443"));
                    None
                }
            }
        };
        let listen = addr(
            "listen",
            self.listen.as_deref(),
            Some("0.0.0.0:8443"),
            &mut errors,
        );
        let metrics_listen = addr(
            "metricsListen",
            self.metrics_listen.as_deref(),
            None,
            &mut errors,
        );

        let t = &self.tls;
        let (cert, key) = if serving {
            (t.cert_file.clone(), t.key_file.clone())
        } else {
            // Never read: `validate_for_verify` keeps only the trust and registry parts.
            (Some(PathBuf::new()), Some(PathBuf::new()))
        };
        if cert.is_none() {
            errors.push("tls.certFile (--tls-cert) is required: TLS is not optional".into());
        }
        if key.is_none() {
            errors.push("tls.keyFile (--tls-key) is required: TLS is not optional".into());
        }
        match (&t.client_ca_file, t.insecure_no_client_auth) {
            (None, false) if serving => errors.push(
                "tls.clientCAFile (--client-ca) is required: the CA that issued Gatekeeper's \
                 client certificate; set tls.insecureNoClientAuth: true \
                 (--insecure-no-client-auth) to serve anyone who can reach the port"
                    .into(),
            ),
            (Some(_), true) => errors
                .push("tls.clientCAFile and tls.insecureNoClientAuth exclude each other".into()),
            _ => {}
        }
        for (k, p) in [
            ("tls.certFile", &t.cert_file),
            ("tls.keyFile", &t.key_file),
            ("tls.clientCAFile", &t.client_ca_file),
        ] {
            if let (true, Some(p)) = (serving, p) {
                exist(&mut errors, k, p, false);
            }
        }

        let policy = self.trust.policy_file.clone();
        let store = self.trust.store_root.clone();
        match &policy {
            None => errors.push("trust.policyFile (--trust-policy) is required".into()),
            Some(p) => exist(&mut errors, "trust.policyFile", p, false),
        }
        match &store {
            None => errors.push("trust.storeRoot (--trust-store) is required".into()),
            Some(p) => exist(&mut errors, "trust.storeRoot", p, true),
        }

        let namespaces = self.validate_namespaces(&mut errors, &exist);

        let r = &self.registry;
        if let Some(p) = &r.docker_config {
            exist(&mut errors, "registry.dockerConfig", p, false);
        }
        for p in &r.ca_files {
            exist(&mut errors, "registry.caFiles", p, false);
        }
        for h in &r.plain_http {
            if h.is_empty() || h.contains('/') || h.contains("://") {
                errors.push(format!("registry.plainHttp: {h:?} must be host[:port]"));
            }
        }
        for (host, hc) in &r.hosts {
            if host.is_empty() || host.contains('/') {
                errors.push(format!("registry.hosts: {host:?} must be host[:port]"));
            }
            if let Some(p) = &hc.ca_file {
                exist(
                    &mut errors,
                    &format!("registry.hosts.{host}.caFile"),
                    p,
                    false,
                );
            }
            match (&hc.username, &hc.password_file) {
                (Some(_), None) | (None, Some(_)) => errors.push(format!(
                    "registry.hosts.{host}: username and passwordFile go together"
                )),
                (Some(_), Some(p)) => exist(
                    &mut errors,
                    &format!("registry.hosts.{host}.passwordFile"),
                    p,
                    false,
                ),
                _ => {}
            }
        }
        for (k, v) in [
            ("registry.maxSignatures", r.max_signatures),
            ("registry.concurrency", r.concurrency),
        ] {
            if v == Some(0) {
                errors.push(format!("{k}: must be at least 1"));
            }
        }

        let l = &self.limits;
        let d = signet_server::Limits::default();
        let dur = |key: &str,
                   v: Option<Dur>,
                   default: Duration,
                   min: Duration,
                   max: Duration,
                   errors: &mut Vec<String>| {
            let v = v.map(|d| d.0).unwrap_or(default);
            if v < min || v > max {
                errors.push(format!("{key}: {v:?} is out of range [{min:?}, {max:?}]"));
            }
            v
        };
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let request_deadline = dur(
            "limits.requestDeadline",
            l.request_deadline,
            d.request_deadline,
            ms(100),
            s(29),
            &mut errors,
        );
        let header_read_timeout = dur(
            "limits.headerReadTimeout",
            l.header_read_timeout,
            d.header_read_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let body_read_timeout = dur(
            "limits.bodyReadTimeout",
            l.body_read_timeout,
            d.body_read_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let handshake_timeout = dur(
            "limits.handshakeTimeout",
            l.handshake_timeout,
            d.handshake_timeout,
            ms(100),
            s(300),
            &mut errors,
        );
        let shutdown_grace = dur(
            "limits.shutdownGrace",
            l.shutdown_grace,
            d.shutdown_grace,
            s(0),
            s(3600),
            &mut errors,
        );
        let count = |key: &str,
                     v: Option<usize>,
                     default: usize,
                     min: usize,
                     max: usize,
                     errors: &mut Vec<String>| {
            let v = v.unwrap_or(default);
            if v < min || v > max {
                errors.push(format!("{key}: {v} is out of range [{min}, {max}]"));
            }
            v
        };
        let max_keys = count(
            "limits.maxKeysPerRequest",
            l.max_keys_per_request,
            d.max_keys,
            1,
            100_000,
            &mut errors,
        );
        let max_body_bytes = count(
            "limits.maxBodyBytes",
            l.max_body_bytes,
            d.max_body_bytes,
            1024,
            64 << 20,
            &mut errors,
        );
        let key_concurrency = count(
            "limits.keyConcurrency",
            l.key_concurrency,
            d.key_concurrency,
            1,
            10_000,
            &mut errors,
        );
        let max_connections = count(
            "limits.maxConnections",
            l.max_connections,
            d.max_connections,
            1,
            100_000,
            &mut errors,
        );
        let max_handshakes = count(
            "limits.maxHandshakes",
            l.max_handshakes,
            d.max_handshakes,
            1,
            100_000,
            &mut errors,
        );
        let max_handshakes_per_peer = count(
            "limits.maxHandshakesPerPeer",
            l.max_handshakes_per_peer,
            d.max_handshakes_per_peer,
            1,
            100_000,
            &mut errors,
        );
        let probe_max_connections = count(
            "limits.probeMaxConnections",
            l.probe_max_connections,
            d.probe_max_connections,
            4,
            100_000,
            &mut errors,
        );
        let max_concurrent_verifications = count(
            "limits.maxConcurrentVerifications",
            l.max_concurrent_verifications,
            32,
            1,
            10_000,
            &mut errors,
        );

        let c = &self.cache;
        let success_ttl = dur(
            "cache.successTTL",
            c.success_ttl,
            s(300),
            s(0),
            s(86_400),
            &mut errors,
        );
        let failure_ttl = dur(
            "cache.failureTTL",
            c.failure_ttl,
            s(30),
            s(0),
            s(86_400),
            &mut errors,
        );
        let tag_ttl = dur(
            "cache.tagTTL",
            c.tag_ttl,
            s(30),
            s(0),
            s(86_400),
            &mut errors,
        );

        let revocation = if self.revocation.enabled.unwrap_or(true) {
            let defaults = signet_engine::revocation::RevocationConfig::default();
            Some(signet_engine::revocation::RevocationConfig {
                fetch_timeout: dur(
                    "revocation.fetchTimeout",
                    self.revocation.fetch_timeout,
                    defaults.fetch_timeout,
                    s(1),
                    s(60),
                    &mut errors,
                ),
                max_crl_age: dur(
                    "revocation.maxCrlAge",
                    self.revocation.max_crl_age,
                    defaults.max_crl_age,
                    s(0),
                    s(86_400),
                    &mut errors,
                ),
                network: signet_engine::revocation::RevocationNetworkPolicy::new(
                    &self.revocation.allow,
                    &self.revocation.deny,
                )
                .unwrap_or_else(|e| {
                    errors.push(format!(
                        "revocation.{e}; write host names, \"*.domain\", addresses or CIDR ranges like 10.0.0.0/8"
                    ));
                    signet_engine::revocation::RevocationNetworkPolicy::default()
                }),
                ..defaults
            })
        } else {
            None
        };

        let rd = signet_server::ReloadSettings::default();
        let debounce = dur(
            "reload.debounce",
            self.reload.debounce,
            rd.debounce,
            ms(0),
            s(60),
            &mut errors,
        );
        let poll_interval = dur(
            "reload.pollInterval",
            self.reload.poll_interval,
            rd.poll_interval,
            ms(100),
            s(86_400),
            &mut errors,
        );

        for (k, list) in [
            (
                "admission.excludeNamespaces",
                &self.admission.exclude_namespaces,
            ),
            ("admission.excludeImages", &self.admission.exclude_images),
        ] {
            if list.iter().any(|p| p.trim().is_empty()) {
                errors.push(format!("{k}: empty pattern"));
            }
        }

        let azure = self
            .azure
            .as_ref()
            .and_then(|a| a.validate(&mut errors, &exist));

        let multi_arch = self.multi_arch.validate(&mut errors);
        let dct = self.dct.as_ref().and_then(|d| match d.validate() {
            Ok(dct) => Some(dct),
            Err(e) => {
                errors.push(format!("dct: {e}"));
                None
            }
        });

        let log_level = self.log.level.clone().unwrap_or_else(|| "info".into());
        if !matches!(
            log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            errors.push(format!(
                "log.level: {log_level:?} is not one of error, warn, info, debug, trace"
            ));
        }

        match (listen, cert, key, policy, store) {
            (Some(listen), Some(cert), Some(key), Some(policy), Some(store))
                if errors.is_empty() =>
            {
                Ok(ServeSettings {
                    server: signet_server::ServerSettings {
                        listen,
                        metrics_listen,
                        limits: signet_server::Limits {
                            request_deadline,
                            max_keys,
                            max_body_bytes,
                            key_concurrency,
                            header_read_timeout,
                            body_read_timeout,
                            handshake_timeout,
                            max_handshakes,
                            max_handshakes_per_peer,
                            max_connections,
                            probe_max_connections,
                            shutdown_grace,
                        },
                        admission: signet_server::AdmissionSettings {
                            exclude_namespaces: self.admission.exclude_namespaces.clone(),
                            exclude_images: self.admission.exclude_images.clone(),
                        },
                        reload: signet_server::ReloadSettings {
                            debounce,
                            poll_interval,
                        },
                    },
                    tls: signet_server::TlsSettings {
                        cert,
                        key,
                        client_ca: self.tls.client_ca_file.clone(),
                    },
                    trust_policy: policy,
                    trust_store: store,
                    namespaces,
                    engine: EngineSettings {
                        registry: self.registry.clone(),
                        max_concurrent_verifications,
                        success_ttl,
                        failure_ttl,
                        tag_ttl,
                        revocation,
                        azure: azure.clone(),
                        multi_arch,
                        dct,
                    },
                    log_level,
                    azure,
                })
            }
            _ => anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  ")),
        }
    }
}

impl Config {
    /// `namespaces:`: names that Kubernetes accepts, both files of each, a bounded count.
    fn validate_namespaces(
        &self,
        errors: &mut Vec<String>,
        exist: &azure::ExistCheck<'_>,
    ) -> BTreeMap<String, NamespaceTrust> {
        if self.namespaces.len() > MAX_NAMESPACES {
            errors.push(format!(
                "namespaces: {} namespaces have their own trust, at most {MAX_NAMESPACES}; \
                 give the others the cluster's trust (trust:)",
                self.namespaces.len()
            ));
        }
        let mut out = BTreeMap::new();
        for (name, ns) in &self.namespaces {
            if !signet_server::valid_namespace(name) {
                errors.push(format!(
                    "namespaces: {name:?} is not a namespace name (a DNS-1123 label: 1 to 63 \
                     lowercase letters, digits or '-', starting and ending with a letter or digit)"
                ));
                continue;
            }
            let key = |field: &str| format!("namespaces.{name}.trust.{field}");
            match &ns.trust.policy_file {
                None => errors.push(format!(
                    "{} is required: the namespace's trust policy (trustpolicy.json)",
                    key("policyFile")
                )),
                Some(p) => exist(errors, &key("policyFile"), p, false),
            }
            match &ns.trust.store_root {
                None => errors.push(format!(
                    "{} is required: the namespace's trust store directory (x509/TYPE/NAME/)",
                    key("storeRoot")
                )),
                Some(p) => exist(errors, &key("storeRoot"), p, true),
            }
            if let (Some(policy), Some(store)) = (&ns.trust.policy_file, &ns.trust.store_root) {
                if Some(policy) == self.trust.policy_file.as_ref()
                    && Some(store) == self.trust.store_root.as_ref()
                {
                    errors.push(format!(
                        "namespaces.{name}.trust: the cluster's policy and stores (trust:); \
                         remove the namespace, it gets the cluster's trust without an entry"
                    ));
                }
                out.insert(
                    name.clone(),
                    NamespaceTrust {
                        trust_policy: policy.clone(),
                        trust_store: store.clone(),
                    },
                );
            }
        }
        out
    }
}

/// What a configuration is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Serve,
    Verify,
}

/// The parts of the configuration `signet verify --config` uses.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub trust_policy: PathBuf,
    pub trust_store: PathBuf,
    /// Namespaces with a trust configuration of their own (`signet audit` applies them).
    pub namespaces: BTreeMap<String, NamespaceTrust>,
    pub engine: EngineSettings,
}
