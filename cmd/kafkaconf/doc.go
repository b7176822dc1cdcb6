// Package kafkaconf is the Kafka connection of every purchasesync process
// and of cmd/loadgen: the flags (each with its PURCHASESYNC_* variable, see
// cmd/envflag), the one builder of franz-go's connection options (seed
// brokers, client id, TLS, SASL), and Check, which tells a configuration
// error from a cluster that is not up yet.
//
// The flags:
//
//	-kafka.brokers         PURCHASESYNC_KAFKA_BROKERS           host:port,... (default 127.0.0.1:19092)
//	-kafka.clientID        PURCHASESYNC_KAFKA_CLIENTID
//	-kafka.tls             PURCHASESYNC_KAFKA_TLS               TLS 1.2 or later; implied by any -kafka.tls.* flag
//	-kafka.tls.caFile      PURCHASESYNC_KAFKA_TLS_CAFILE        PEM CA(s) of the brokers; default: the system roots
//	-kafka.tls.certFile    PURCHASESYNC_KAFKA_TLS_CERTFILE      mutual TLS, with -kafka.tls.keyFile; re-read when changed
//	-kafka.tls.keyFile     PURCHASESYNC_KAFKA_TLS_KEYFILE
//	-kafka.tls.serverName  PURCHASESYNC_KAFKA_TLS_SERVERNAME    name to verify instead of the broker's host
//	-kafka.sasl.mechanism  PURCHASESYNC_KAFKA_SASL_MECHANISM    plain, scram-sha-256, scram-sha-512, oauthbearer, aws-msk-iam
//	-kafka.sasl.username   PURCHASESYNC_KAFKA_SASL_USERNAME     plain and scram-*
//	-kafka.sasl.password   PURCHASESYNC_KAFKA_SASL_PASSWORD     plain and scram-*; or PURCHASESYNC_KAFKA_SASL_PASSWORD_FILE
//	-kafka.sasl.tokenFile  PURCHASESYNC_KAFKA_SASL_TOKENFILE    oauthbearer; re-read when changed
//
// aws-msk-iam signs each authentication with AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, read from the environment
// each time, so rotated credentials are used without a restart; it needs no
// AWS SDK (and so no profiles or instance metadata). SASL without TLS works
// but Warning says, once, that credentials cross the network unencrypted.
//
// Check issues one Metadata request to the seed brokers (so TLS and SASL
// run) and classifies what went wrong: a *ConfigError (wrong password,
// unknown CA, TLS against a plaintext listener, ...) is fatal and its one
// line names the flag that fixes it; ErrUnreachable (refused, timeouts) is
// a cluster that is not up yet, and the caller goes on. No error of this
// package contains a secret.
//
// Producer settings (compression, linger, acks) are not here: they belong to
// the producers of cmd/purchasesync and cmd/loadgen.
package kafkaconf
