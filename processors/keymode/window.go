package keymode

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"purchasesync/schemas"
)

// window is what the detector remembers of one site: its recent webhooks
// and storefront events (each at most maxEntries, none older than maxAge
// before the newest), the pairs among them that name the same order, and
// indexes to find a pair in O(1). It is a pure value: the same
// observations in the same order give the same window, and applying an
// observation already in the window changes nothing, so a replay after a
// crash (at-least-once input) cannot count a pair twice.
type window struct {
	Site string `json:"site"`
	Seq  uint64 `json:"seq"`
	// Newest is the latest observation time seen (unix ms): the clock of
	// the time bound, so eviction does not depend on when a replay runs.
	Newest int64     `json:"newest"`
	WH     []webhook `json:"wh"`
	SF     []sfEvent `json:"sf"`

	// Indexes from a normalised identifier to the seq of the entry holding
	// it, rebuilt on restore (index).
	whIdx map[string]uint64
	sfIdx map[string]uint64
	whPos map[uint64]int // seq → absolute position: WH[pos-whBase]
	sfPos map[uint64]int
	// Evicted entries leave the front of WH and SF in bulk: the first
	// whHead (sfHead) entries are dead, and whBase (sfBase) entries were
	// dropped before WH[0], so positions stay valid without re-indexing.
	whHead, sfHead int
	whBase, sfBase int
}

type webhook struct {
	Seq     uint64 `json:"q"`
	At      int64  `json:"t"`
	ID      string `json:"i"`
	Number  string `json:"n,omitempty"`
	Name    string `json:"m,omitempty"`
	Matched bool   `json:"x,omitempty"`
}

type sfEvent struct {
	Seq   uint64 `json:"q"`
	At    int64  `json:"t"`
	Value string `json:"v"`
	// Modes is the bit set (1 << index in schemas.OrderKeys) of modes under
	// which the event and its matched webhook share a key; 0 = unmatched.
	Modes uint8 `json:"b,omitempty"`
	// Double: matched while the site's configured mode was not among
	// Modes, and syncing was on: the join registered both sides.
	Double bool `json:"d,omitempty"`
	// The matched webhook's identifiers, for samples.
	WID     string `json:"wi,omitempty"`
	WNumber string `json:"wn,omitempty"`
	WName   string `json:"wm,omitempty"`
}

func newWindow(site string) *window {
	w := &window{Site: site}
	w.index()
	return w
}

// index rebuilds the indexes from WH and SF.
func (w *window) index() {
	w.whIdx, w.sfIdx = map[string]uint64{}, map[string]uint64{}
	w.whPos, w.sfPos = map[uint64]int{}, map[uint64]int{}
	w.whHead, w.sfHead, w.whBase, w.sfBase = 0, 0, 0, 0
	for i, e := range w.WH {
		w.whPos[e.Seq] = i
		for _, k := range webhookKeys(e.ID, e.Number, e.Name) {
			w.whIdx[k] = e.Seq
		}
	}
	for i, e := range w.SF {
		w.sfPos[e.Seq] = i
		for _, k := range storefrontKeys(e.Value) {
			w.sfIdx[k] = e.Seq
		}
	}
}

// The index keys: one per mode, the identifier as that mode normalises it,
// so a storefront value and a webhook meet under a mode exactly when their
// keys for it are equal (schemas.KeyModesMatching).
func webhookKeys(id, number, name string) []string {
	keys := make([]string, 0, 3)
	for i, v := range []string{id, number, name} {
		if v = schemas.NormalizeOrderNumber(schemas.OrderKeys[i], v); v != "" {
			keys = append(keys, string(rune('0'+i))+v)
		}
	}
	return keys
}

func storefrontKeys(v string) []string {
	keys := make([]string, 0, 3)
	for i, m := range schemas.OrderKeys {
		if n := schemas.NormalizeOrderNumber(m, v); n != "" {
			keys = append(keys, string(rune('0'+i))+n)
		}
	}
	return keys
}

func modeBits(modes []schemas.OrderKey) uint8 {
	var b uint8
	for _, m := range modes {
		for i, k := range schemas.OrderKeys {
			if k == m {
				b |= 1 << i
			}
		}
	}
	return b
}

// limits bound a window.
type limits struct {
	maxEntries int
	maxAge     time.Duration
}

// siteMode is the site's configuration when an observation is applied.
type siteMode struct {
	mode    schemas.OrderKey
	syncing bool
}

// apply adds one observation; it reports whether the window changed and
// whether the observation completed a suspected double registration.
func (w *window) apply(o *schemas.KeyModeObservation, cfg siteMode, lim limits) (changed, double bool) {
	at := o.At.UnixMilli()
	if cutoff := w.Newest - lim.maxAge.Milliseconds(); w.Newest != 0 && at < cutoff {
		return false, false // older than the window already is
	}
	switch o.Side {
	case schemas.SideWebhook:
		changed, double = w.addWebhook(o, at, cfg)
	case schemas.SideStorefront:
		changed, double = w.addStorefront(o, at, cfg)
	}
	if at > w.Newest {
		w.Newest, changed = at, true
	}
	w.evict(lim)
	return changed, double
}

func (w *window) addWebhook(o *schemas.KeyModeObservation, at int64, cfg siteMode) (changed, double bool) {
	keys := webhookKeys(o.ID, o.Number, o.Name)
	if len(keys) == 0 {
		return false, false
	}
	if seq, ok := w.whIdx[keys[0]]; ok && w.WH[w.whPos[seq]-w.whBase].ID == o.ID {
		return false, false // a redelivery, a reconciled copy, or a replay
	}
	w.Seq++
	e := webhook{Seq: w.Seq, At: at, ID: o.ID, Number: o.Number, Name: o.Name}
	// The storefront event it names, if one waits.
	for _, k := range keys {
		seq, ok := w.sfIdx[k]
		if !ok {
			continue
		}
		sf := &w.SF[w.sfPos[seq]-w.sfBase]
		if sf.Modes != 0 {
			continue
		}
		double = w.pair(sf, &e, cfg)
		break
	}
	w.WH = append(w.WH, e)
	w.whPos[e.Seq] = w.whBase + len(w.WH) - 1
	for _, k := range keys {
		w.whIdx[k] = e.Seq
	}
	return true, double
}

func (w *window) addStorefront(o *schemas.KeyModeObservation, at int64, cfg siteMode) (changed, double bool) {
	v := strings.TrimSpace(o.Value)
	keys := storefrontKeys(v)
	if len(keys) == 0 {
		return false, false
	}
	if seq, ok := w.sfIdx[keys[0]]; ok && w.SF[w.sfPos[seq]-w.sfBase].Value == v {
		return false, false // a reload of the thank-you page, or a replay
	}
	w.Seq++
	e := sfEvent{Seq: w.Seq, At: at, Value: v}
	for _, k := range keys {
		seq, ok := w.whIdx[k]
		if !ok {
			continue
		}
		wh := &w.WH[w.whPos[seq]-w.whBase]
		if wh.Matched {
			continue
		}
		double = w.pair(&e, wh, cfg)
		break
	}
	w.SF = append(w.SF, e)
	w.sfPos[e.Seq] = w.sfBase + len(w.SF) - 1
	for _, k := range keys {
		w.sfIdx[k] = e.Seq
	}
	return true, double
}

func (w *window) pair(sf *sfEvent, wh *webhook, cfg siteMode) bool {
	modes := schemas.KeyModesMatching(sf.Value, wh.ID, wh.Number, wh.Name)
	sf.Modes = modeBits(modes)
	sf.WID, sf.WNumber, sf.WName = wh.ID, wh.Number, wh.Name
	wh.Matched = true
	sf.Double = cfg.syncing && sf.Modes&modeBits([]schemas.OrderKey{cfg.mode}) == 0
	return sf.Double
}

// evict drops the oldest entries beyond the bounds. Entries arrive roughly
// in time order, so the oldest are at the front. The dead front is cut off
// once it is half the slice, so an observation costs O(1) amortised and
// the backing arrays stay bounded.
func (w *window) evict(lim limits) {
	cutoff := w.Newest - lim.maxAge.Milliseconds()
	for w.whHead < len(w.WH) && (len(w.WH)-w.whHead > lim.maxEntries || w.WH[w.whHead].At < cutoff) {
		e := w.WH[w.whHead]
		for _, k := range webhookKeys(e.ID, e.Number, e.Name) {
			if w.whIdx[k] == e.Seq {
				delete(w.whIdx, k)
			}
		}
		delete(w.whPos, e.Seq)
		w.WH[w.whHead] = webhook{}
		w.whHead++
	}
	if w.whHead > 0 && w.whHead >= len(w.WH)/2 {
		w.WH = append(make([]webhook, 0, max(2*(len(w.WH)-w.whHead), 8)), w.WH[w.whHead:]...)
		w.whBase += w.whHead
		w.whHead = 0
	}
	for w.sfHead < len(w.SF) && (len(w.SF)-w.sfHead > lim.maxEntries || w.SF[w.sfHead].At < cutoff) {
		e := w.SF[w.sfHead]
		for _, k := range storefrontKeys(e.Value) {
			if w.sfIdx[k] == e.Seq {
				delete(w.sfIdx, k)
			}
		}
		delete(w.sfPos, e.Seq)
		w.SF[w.sfHead] = sfEvent{}
		w.sfHead++
	}
	if w.sfHead > 0 && w.sfHead >= len(w.SF)/2 {
		w.SF = append(make([]sfEvent, 0, max(2*(len(w.SF)-w.sfHead), 8)), w.SF[w.sfHead:]...)
		w.sfBase += w.sfHead
		w.sfHead = 0
	}
}

// live returns the entries in the window.
func (w *window) live() ([]webhook, []sfEvent) { return w.WH[w.whHead:], w.SF[w.sfHead:] }

// samplesPerMode bounds the samples an evidence record carries.
const samplesPerMode = 3

// evidence summarises the window.
func (w *window) evidence(now time.Time) *schemas.KeyModeEvidence {
	whs, sfs := w.live()
	ev := &schemas.KeyModeEvidence{Site: w.Site, StorefrontEvents: len(sfs), Webhooks: len(whs),
		Modes: map[schemas.OrderKey]schemas.KeyModeModeEvidence{}, UpdatedAt: now.UTC()}
	from, to := int64(0), int64(0)
	see := func(at int64) {
		if from == 0 || at < from {
			from = at
		}
		if at > to {
			to = at
		}
	}
	for _, e := range whs {
		see(e.At)
	}
	for i := len(sfs) - 1; i >= 0; i-- { // newest samples first
		e := sfs[i]
		see(e.At)
		if e.Modes == 0 {
			continue
		}
		ev.Matched++
		if e.Double {
			ev.SuspectedDoubles++
		}
		for b, m := range schemas.OrderKeys {
			if e.Modes&(1<<b) == 0 {
				continue
			}
			me := ev.Modes[m]
			me.Matches++
			if len(me.Samples) < samplesPerMode {
				me.Samples = append(me.Samples, schemas.KeyModeSample{Storefront: e.Value, ShopifyID: e.WID, Number: e.WNumber, Name: e.WName, At: time.UnixMilli(e.At).UTC()})
			}
			ev.Modes[m] = me
		}
	}
	for _, m := range schemas.OrderKeys {
		if _, ok := ev.Modes[m]; !ok {
			ev.Modes[m] = schemas.KeyModeModeEvidence{Samples: []schemas.KeyModeSample{}}
		}
	}
	if from != 0 {
		ev.WindowFrom, ev.WindowTo = time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC()
	}
	return ev
}

// stateVersion leads every keymode.state.v1 value, so a later encoding can
// be told from this one.
const stateVersion byte = 1

func (w *window) marshal() ([]byte, error) {
	live := *w
	live.WH, live.SF = w.live()
	b, err := json.Marshal(&live)
	if err != nil {
		return nil, err
	}
	return append([]byte{stateVersion}, b...), nil
}

func unmarshalWindow(b []byte) (*window, error) {
	if len(b) == 0 || b[0] != stateVersion {
		return nil, fmt.Errorf("keymode state: unknown encoding version")
	}
	w := &window{}
	if err := json.Unmarshal(b[1:], w); err != nil {
		return nil, fmt.Errorf("keymode state: %w", err)
	}
	w.index()
	return w, nil
}
