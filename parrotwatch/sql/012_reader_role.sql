-- A read-only role for the dashboards (Grafana's datasource, `parrotwatch dashboards push`).
--
-- Grafana runs whatever SQL a panel editor types, and the values of dashboard variables that a
-- crafted link sets: its account may only read what the panels show. This role:
--   * may SELECT the tables the dashboards read (dashboards/*.py, `Panel.tables`), and nothing
--     else: not the evaluator state, the drift samples nor the reference excerpts;
--   * cannot read raw dead-letter payloads: dead_letters is revoked, the panels read the view
--     dead_letter_reasons (no payload column; a view runs with its owner's rights);
--   * has a statement timeout (a runaway panel cannot hold the database), read-only
--     transactions by default, standard-conforming strings (a quote doubled by Grafana's
--     variable interpolation can never be escaped by a backslash), and 20 connections at most.
--
-- NOLOGIN here: migrations carry no secrets. Whoever provisions Grafana gives it LOGIN and a
-- password (`parrotwatch dashboards push` does, as parrotwatch.db.provision_reader), or a DBA
-- creates the role beforehand (`CREATE ROLE parrotwatch_reader LOGIN PASSWORD '...'`), which
-- this migration then keeps. Roles belong to the server, so the role is shared by every
-- database of a server; the grants below are per database.
--
-- Creating the role and setting its defaults needs CREATEROLE (the embedded server's and
-- compose's accounts are superusers). Without it, have a DBA run this file's CREATE ROLE and
-- its five ALTER ROLE ... SET statements first: the migration then finds them in place and only
-- grants, as the owner of the tables.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'parrotwatch_reader') THEN
        BEGIN
            CREATE ROLE parrotwatch_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
                NOINHERIT NOREPLICATION CONNECTION LIMIT 20;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it at the same moment
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'cannot create role parrotwatch_reader: %', SQLERRM USING HINT =
                    'give this account CREATEROLE, or have a DBA create the role first '
                    '(parrotwatch/sql/012_reader_role.sql says how)';
        END;
    END IF;
    -- Session defaults, set only when missing (ALTER ROLE rewrites a server-wide catalog row).
    IF NOT EXISTS (
        SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
        WHERE r.rolname = 'parrotwatch_reader' AND s.setdatabase = 0
          AND s.setconfig @> ARRAY['statement_timeout=30s', 'lock_timeout=5s',
                                   'idle_in_transaction_session_timeout=60s',
                                   'default_transaction_read_only=on',
                                   'standard_conforming_strings=on']) THEN
        ALTER ROLE parrotwatch_reader SET statement_timeout = '30s';
        ALTER ROLE parrotwatch_reader SET lock_timeout = '5s';
        ALTER ROLE parrotwatch_reader SET idle_in_transaction_session_timeout = '60s';
        ALTER ROLE parrotwatch_reader SET default_transaction_read_only = on;
        ALTER ROLE parrotwatch_reader SET standard_conforming_strings = on;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO parrotwatch_reader', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO parrotwatch_reader', current_schema());
    -- Exactly the grants below, whatever was granted before (an admin's blanket grant included).
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM parrotwatch_reader',
                   current_schema());
END
$$;

-- Dead letters without their payloads: what the Overview dashboard shows.
CREATE VIEW dead_letter_reasons AS
SELECT source_topic, kafka_partition, kafka_offset, reason, kafka_timestamp, stored_at,
       octet_length(payload) AS payload_bytes
FROM dead_letters;

REVOKE ALL ON dead_letters FROM PUBLIC;
GRANT SELECT ON inference_scores, feedback, request_drilldown, window_counts, window_metrics,
    alerts, alert_outbox, alert_delivery_log, drift_windows, audit_runs, audit_metrics,
    sink_batches, stream_watermarks, dead_letter_reasons
    TO parrotwatch_reader;
-- The Drift dashboard counts each segment's reference: not its prompt excerpts nor embeddings.
GRANT SELECT (model, app, side) ON drift_reference TO parrotwatch_reader;
