// Package container holds the purchasesync image (Containerfile, build.sh,
// containers.conf) and its test: the image is built, started against the
// local stack and must register a purchase, as non-root on a read-only root
// filesystem. See deploy/README.md for deploying it.
package container
