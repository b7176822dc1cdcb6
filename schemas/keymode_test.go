package schemas

import (
	"reflect"
	"strings"
	"testing"
)

func TestKeyModesMatching(t *testing.T) {
	for _, c := range []struct {
		v, id, number, name string
		want                []OrderKey
	}{
		{"5837291049", "5837291049", "1001", "#1001", []OrderKey{OrderKeyID}},
		{"1001", "5837291049", "1001", "#1001", []OrderKey{OrderKeyNumber}},
		{"#1001", "5837291049", "1001", "#1001", []OrderKey{OrderKeyNumber, OrderKeyName}},
		{" #1001 ", "5837291049", "1001", "#1001", []OrderKey{OrderKeyNumber, OrderKeyName}},
		// A store's own prefix and suffix: the name as sent fits
		// order_name, the bare number order_number.
		{"EU-1001-B", "5837291049", "1001", "EU-1001-B", []OrderKey{OrderKeyName}},
		{"1001", "5837291049", "1001", "EU-1001-B", []OrderKey{OrderKeyNumber}},
		{"1002", "5837291049", "1001", "#1001", nil},
		{"", "5837291049", "1001", "#1001", nil},
	} {
		if got := KeyModesMatching(c.v, c.id, c.number, c.name); !reflect.DeepEqual(got, c.want) {
			t.Errorf("KeyModesMatching(%q, %s, %s, %s) = %v, want %v", c.v, c.id, c.number, c.name, got, c.want)
		}
	}
}

func evidenceOf(matched, id, number, name int) *KeyModeEvidence {
	return &KeyModeEvidence{Site: "s", Matched: matched, StorefrontEvents: matched + 3, Webhooks: matched + 5,
		Modes: map[OrderKey]KeyModeModeEvidence{OrderKeyID: {Matches: id}, OrderKeyNumber: {Matches: number}, OrderKeyName: {Matches: name}}}
}

func TestDiagnoseKeyMode(t *testing.T) {
	site := Site{Site: "s", OrderKey: OrderKeyID}
	for _, c := range []struct {
		name      string
		site      Site
		ev        *KeyModeEvidence
		verdict   string
		suggested OrderKey
	}{
		{"no evidence", site, nil, VerdictInsufficient, ""},
		{"too few", site, evidenceOf(19, 0, 19, 19), VerdictInsufficient, ""},
		{"consistent", site, evidenceOf(40, 40, 0, 0), VerdictConsistent, ""},
		{"consistent despite noise", site, evidenceOf(40, 37, 3, 3), VerdictConsistent, ""},
		// "#1001": both number and name fit; the first of equals wins.
		{"sends #1001", site, evidenceOf(40, 0, 40, 40), VerdictContradicted, OrderKeyNumber},
		{"sends EU-1001", site, evidenceOf(40, 0, 0, 40), VerdictContradicted, OrderKeyName},
		{"sends the id to a number site", Site{Site: "s", OrderKey: OrderKeyNumber}, evidenceOf(30, 30, 0, 0), VerdictContradicted, OrderKeyID},
		{"half way", site, evidenceOf(40, 20, 20, 0), VerdictInconclusive, ""},
		{"unset mode is order_id", Site{Site: "s"}, evidenceOf(40, 40, 0, 0), VerdictConsistent, ""},
	} {
		d := DiagnoseKeyMode(c.site, c.ev, DefaultKeyModeMinMatches)
		got := OrderKey("")
		if d.SuggestedOrderKey != nil {
			got = *d.SuggestedOrderKey
		}
		if d.Verdict != c.verdict || got != c.suggested {
			t.Errorf("%s: verdict %s, suggested %q; want %s, %q (%s)", c.name, d.Verdict, got, c.verdict, c.suggested, d.Message)
		}
		if len(d.Evidence) != 3 || d.ConfiguredOrderKey == "" || d.Message == "" {
			t.Errorf("%s: incomplete diagnosis %+v", c.name, d)
		}
		if c.suggested != "" && !strings.Contains(d.Message, string(c.suggested)) {
			t.Errorf("%s: message %q does not name %s", c.name, d.Message, c.suggested)
		}
	}
}
