package appauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"

	"purchasesync/schemas"
)

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

func hmacHex(secret string, q url.Values) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(schemas.OAuthQueryMessage(q)))
	return hex.EncodeToString(mac.Sum(nil))
}
