package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The usage store keeps, per key, model and hour, the requests, prompt and
// completion tokens and errors, in a bbolt file (usage.db in state_dir).
// Records gather in memory and are written in one transaction every
// usageFlushEvery, so the file is at most that (plus one commit) behind:
// a crash loses at most the requests that finished in that window. A file
// that cannot be opened or read as a usage store stops the gateway with
// its path; it is never reset.

// UsageFile is the store's file name in state_dir.
const UsageFile = "usage.db"

// usageFlushEvery is how often recorded usage is written.
const usageFlushEvery = 500 * time.Millisecond

// usagePruneEvery is how often records older than usage_retention are
// removed.
const usagePruneEvery = time.Hour

var (
	bucketUsage = []byte("usage")
	bucketMeta  = []byte("meta")
	bucketPins  = []byte("pins")
	metaFormat  = []byte("format")
)

// usageFormat is the layout version in the meta bucket.
const usageFormat = 1

type usageKey struct {
	key, model string
	hour       int64 // unix hours
}

// usageCounts is one key's use of one model in one hour.
type usageCounts struct {
	Requests, Prompt, Completion, Errors int64
}

func (c *usageCounts) add(o usageCounts) {
	c.Requests += o.Requests
	c.Prompt += o.Prompt
	c.Completion += o.Completion
	c.Errors += o.Errors
}

func (c usageCounts) encode() []byte {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b[0:], uint64(c.Requests))
	binary.BigEndian.PutUint64(b[8:], uint64(c.Prompt))
	binary.BigEndian.PutUint64(b[16:], uint64(c.Completion))
	binary.BigEndian.PutUint64(b[24:], uint64(c.Errors))
	return b
}

func decodeCounts(b []byte) (usageCounts, bool) {
	if len(b) != 32 {
		return usageCounts{}, false
	}
	return usageCounts{int64(binary.BigEndian.Uint64(b[0:])), int64(binary.BigEndian.Uint64(b[8:])),
		int64(binary.BigEndian.Uint64(b[16:])), int64(binary.BigEndian.Uint64(b[24:]))}, true
}

// dbKey is key \0 hour(8 bytes, big-endian) model: one key's hours sort
// together, in time order.
func (k usageKey) dbKey() []byte {
	b := make([]byte, 0, len(k.key)+9+len(k.model))
	b = append(b, k.key...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(k.hour))
	return append(b, k.model...)
}

func parseDBKey(b []byte) (usageKey, bool) {
	for i, c := range b {
		if c == 0 {
			if len(b) < i+9 {
				return usageKey{}, false
			}
			return usageKey{key: string(b[:i]), hour: int64(binary.BigEndian.Uint64(b[i+1 : i+9])), model: string(b[i+9:])}, true
		}
	}
	return usageKey{}, false
}

// usageStore is the store; without a state folder it keeps everything in
// memory. Safe for concurrent use.
type usageStore struct {
	db   *bolt.DB
	path string
	log  zerolog.Logger
	// retention: hours older than this are removed every usagePruneEvery
	// (0: kept for ever)
	retention time.Duration

	mu      sync.Mutex
	pending map[usageKey]usageCounts
	mem     map[usageKey]usageCounts // written usage without a file
	pins    map[pinKey]bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type pinKey struct{ node, model string }

// openUsage opens (or creates) dir/usage.db; dir "" keeps usage in
// memory. Records older than retention are removed (0: none ever).
func openUsage(dir string, retention time.Duration, log zerolog.Logger) (s *usageStore, err error) {
	s = &usageStore{log: log, retention: retention, pending: map[usageKey]usageCounts{}, mem: map[usageKey]usageCounts{}, pins: map[pinKey]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if dir == "" {
		go s.flushLoop()
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("usage store: creating state_dir %s: %w", dir, err)
	}
	s.path = filepath.Join(dir, UsageFile)
	defer func() {
		// bbolt may panic on a damaged file: report it like any other
		// unreadable store.
		if r := recover(); r != nil {
			if s != nil && s.db != nil {
				_ = s.db.Close()
			}
			s, err = nil, unreadable(filepath.Join(dir, UsageFile), fmt.Errorf("%v", r))
		}
	}()
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("usage store %s is locked by another process (another gateway with the same state_dir?)", s.path)
		}
		return nil, unreadable(s.path, err)
	}
	s.db = db
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketUsage) != nil {
				return errors.New("it has usage but no format record")
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(metaFormat, []byte{usageFormat}); err != nil {
				return err
			}
		}
		if v := meta.Get(metaFormat); len(v) != 1 || v[0] != usageFormat {
			return fmt.Errorf("unknown format %v (this helexa writes %d)", v, usageFormat)
		}
		for _, b := range [][]byte{bucketUsage, bucketPins} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketPins).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i > 0 {
				s.pins[pinKey{node: string(k[:i]), model: string(k[i+1:])}] = true
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, unreadable(s.path, err)
	}
	go s.flushLoop()
	return s, nil
}

func unreadable(path string, err error) error {
	return fmt.Errorf("usage store %s cannot be read (%v); it was left as it is: move it aside to start with an empty store", path, err)
}

// record adds one finished request.
func (s *usageStore) record(key, model string, at time.Time, c usageCounts) {
	k := usageKey{key: key, model: model, hour: at.Unix() / 3600}
	s.mu.Lock()
	p := s.pending[k]
	p.add(c)
	s.pending[k] = p
	s.mu.Unlock()
}

func (s *usageStore) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(usageFlushEvery)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-s.stop:
			s.flush()
			return
		case now := <-t.C:
			s.flush()
			if s.retention > 0 && now.Sub(pruned) >= usagePruneEvery {
				pruned = now
				s.prune(now)
			}
		}
	}
}

// prune removes the written hours that ended more than the retention
// before now.
func (s *usageStore) prune(now time.Time) {
	cut := now.Add(-s.retention).Unix() / 3600 // hours before this one go
	n := 0
	if s.db == nil {
		s.mu.Lock()
		for k := range s.mem {
			if k.hour < cut {
				delete(s.mem, k)
				n++
			}
		}
		s.mu.Unlock()
	} else if err := s.deleteBefore(cut, &n); err != nil {
		s.log.Error().Err(err).Str("path", s.path).Msg("removing usage past usage_retention failed; tried again in an hour")
		return
	}
	if n > 0 {
		s.log.Info().Int("records", n).Dur("retention", s.retention).Msg("removed usage past usage_retention")
	}
}

// deleteBefore removes the file's records of hours before cut, counting
// them in n.
func (s *usageStore) deleteBefore(cut int64, n *int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("usage store %s: %v", s.path, r)
		}
	}()
	return s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		for k, _ := c.First(); k != nil; {
			if uk, ok := parseDBKey(k); ok && uk.hour < cut {
				gone := append([]byte(nil), k...)
				if err := c.Delete(); err != nil {
					return err
				}
				*n++
				// after a Delete the cursor's place is undefined: look
				// again from the key that went
				k, _ = c.Seek(gone)
				continue
			}
			k, _ = c.Next()
		}
		return nil
	})
}

// flush writes the pending records in one transaction. On failure they
// stay pending for the next try.
func (s *usageStore) flush() {
	s.mu.Lock()
	batch := s.pending
	if len(batch) == 0 {
		s.mu.Unlock()
		return
	}
	s.pending = map[usageKey]usageCounts{}
	s.mu.Unlock()
	err := s.write(batch)
	if err != nil {
		s.log.Error().Err(err).Str("path", s.path).Int("records", len(batch)).Msg("writing usage failed; kept for the next try")
		s.mu.Lock()
		for k, c := range batch {
			p := s.pending[k]
			p.add(c)
			s.pending[k] = p
		}
		s.mu.Unlock()
	}
}

func (s *usageStore) write(batch map[usageKey]usageCounts) (err error) {
	if s.db == nil {
		s.mu.Lock()
		for k, c := range batch {
			m := s.mem[k]
			m.add(c)
			s.mem[k] = m
		}
		s.mu.Unlock()
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("usage store %s: %v", s.path, r)
		}
	}()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for k, c := range batch {
			dk := k.dbKey()
			old, _ := decodeCounts(b.Get(dk))
			old.add(c)
			if err := b.Put(dk, old.encode()); err != nil {
				return err
			}
		}
		return nil
	})
}

// close writes what is pending and closes the file.
func (s *usageStore) close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	if s.db == nil {
		return nil
	}
	s.flush()
	return s.db.Close()
}

// hours returns one key's usage (every model) per hour in [from, to), the
// written records and the pending ones together, by model.
func (s *usageStore) hours(key string, from, to time.Time) map[usageKey]usageCounts {
	out := map[usageKey]usageCounts{}
	fh, th := from.Unix()/3600, (to.Unix()+3599)/3600
	in := func(k usageKey) bool { return k.key == key && k.hour >= fh && k.hour < th }
	s.mu.Lock()
	for k, c := range s.pending {
		if in(k) {
			o := out[k]
			o.add(c)
			out[k] = o
		}
	}
	for k, c := range s.mem {
		if in(k) {
			o := out[k]
			o.add(c)
			out[k] = o
		}
	}
	s.mu.Unlock()
	if s.db == nil {
		return out
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error().Str("path", s.path).Interface("panic", r).Msg("reading usage failed")
			}
		}()
		_ = s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketUsage).Cursor()
			start := usageKey{key: key, hour: fh}.dbKey()
			for k, v := c.Seek(start); k != nil; k, v = c.Next() {
				uk, ok := parseDBKey(k)
				if !ok || uk.key != key || uk.hour >= th {
					break
				}
				cnt, ok := decodeCounts(v)
				if !ok {
					continue
				}
				o := out[uk]
				o.add(cnt)
				out[uk] = o
			}
			return nil
		})
	}()
	return out
}

// spent is the tokens (prompt + completion) key used since a time.
func (s *usageStore) spent(key string, since time.Time) int64 {
	var t int64
	for _, c := range s.hours(key, since, time.Now().Add(time.Hour)) {
		t += c.Prompt + c.Completion
	}
	return t
}

// UsagePoint is one hour of one key's usage, every model together.
type UsagePoint struct {
	Hour       time.Time `json:"hour"`
	Requests   int64     `json:"requests"`
	Prompt     int64     `json:"prompt_tokens"`
	Completion int64     `json:"completion_tokens"`
	Errors     int64     `json:"errors"`
}

// series is one key's usage per hour from from to to, with empty hours
// filled in.
func (s *usageStore) series(key string, from, to time.Time) []UsagePoint {
	byHour := map[int64]usageCounts{}
	for k, c := range s.hours(key, from, to) {
		o := byHour[k.hour]
		o.add(c)
		byHour[k.hour] = o
	}
	var out []UsagePoint
	for h := from.Unix() / 3600; h <= to.Unix()/3600; h++ {
		c := byHour[h]
		out = append(out, UsagePoint{Hour: time.Unix(h*3600, 0).UTC(), Requests: c.Requests, Prompt: c.Prompt, Completion: c.Completion, Errors: c.Errors})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hour.Before(out[j].Hour) })
	return out
}

// setPin records (or removes) a pin made from the console.
func (s *usageStore) setPin(node, model string, on bool) error {
	s.mu.Lock()
	if on {
		s.pins[pinKey{node, model}] = true
	} else {
		delete(s.pins, pinKey{node, model})
	}
	s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	k := append(append([]byte(node), 0), model...)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if on {
			return tx.Bucket(bucketPins).Put(k, []byte{1})
		}
		return tx.Bucket(bucketPins).Delete(k)
	})
	if err != nil {
		return fmt.Errorf("saving pin in %s: %w", s.path, err)
	}
	return nil
}

func (s *usageStore) pinned(node, model string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[pinKey{node, model}]
}
