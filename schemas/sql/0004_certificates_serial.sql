-- Looking a certificate up by serial alone (certfleet cert view SERIAL, OCSP by serial)
-- should not scan the table.
CREATE INDEX certificates_serial ON certificates (serial);
