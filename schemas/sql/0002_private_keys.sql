-- Private keys of the "db" key backend (docs/keys.md): DER PKCS#8, encrypted with PBES2
-- (scrypt + AES-256-CBC) unless [keys] allow_unencrypted_db is set. The id is the key id the
-- CA's key_backend_options refer to. Rows are written in the same transaction as their CA.
CREATE TABLE private_keys (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    pkcs8       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
