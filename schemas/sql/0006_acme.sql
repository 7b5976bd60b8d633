-- ACME (RFC 8555; django-ca's AcmeAccount, AcmeOrder, AcmeAuthorization, AcmeChallenge and
-- AcmeCertificate). Every object is addressed by a random slug in its URL
-- (http://HOST/acme/<CA name>/<kind>/<slug>); status values are RFC 8555's.
CREATE TABLE acme_accounts (
    id                      bigserial PRIMARY KEY,
    ca_id                   bigint NOT NULL REFERENCES certificate_authorities (id),
    slug                    text NOT NULL UNIQUE,
    jwk                     jsonb NOT NULL,             -- the account's public key (RFC 7517)
    thumbprint              text NOT NULL,              -- RFC 7638, base64url
    contact                 jsonb NOT NULL DEFAULT '[]',
    status                  text NOT NULL DEFAULT 'valid'
                            CHECK (status IN ('valid', 'deactivated', 'revoked')),
    terms_of_service_agreed boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (ca_id, thumbprint)
);

CREATE TABLE acme_orders (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES acme_accounts (id),
    slug        text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    expires     timestamptz NOT NULL,
    not_before  timestamptz,
    not_after   timestamptz,
    error       jsonb,                                  -- a problem document, when invalid
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- The per-account limit on pending orders counts these.
CREATE INDEX acme_orders_account_open ON acme_orders (account_id)
    WHERE status IN ('pending', 'ready', 'processing');

CREATE TABLE acme_authorizations (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES acme_orders (id),
    slug        text NOT NULL UNIQUE,
    type        text NOT NULL DEFAULT 'dns' CHECK (type = 'dns'),
    value       text NOT NULL,                          -- the name, without "*." for wildcards
    wildcard    boolean NOT NULL DEFAULT false,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires     timestamptz NOT NULL
);
CREATE INDEX acme_authorizations_order ON acme_authorizations (order_id);

CREATE TABLE acme_challenges (
    id               bigserial PRIMARY KEY,
    authorization_id bigint NOT NULL REFERENCES acme_authorizations (id),
    slug             text NOT NULL UNIQUE,
    type             text NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    token            text NOT NULL,                     -- base64url, 32 random octets
    validated        timestamptz,
    error            jsonb
);
CREATE INDEX acme_challenges_authorization ON acme_challenges (authorization_id);

CREATE TABLE acme_certificates (
    id              bigserial PRIMARY KEY,
    order_id        bigint NOT NULL UNIQUE REFERENCES acme_orders (id),
    slug            text NOT NULL UNIQUE,
    csr             bytea NOT NULL,
    certificate_id  bigint REFERENCES certificates (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX acme_certificates_certificate ON acme_certificates (certificate_id);
