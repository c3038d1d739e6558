package gateway

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func TestPickServing(t *testing.T) {
	f := func(nodes []servingNode, want string, wantOK bool) {
		t.Helper()
		got, ok := pickServing(nodes)
		if got != want || ok != wantOK {
			t.Fatalf("pickServing(%v) = %q, %v; want %q, %v", nodes, got, ok, want, wantOK)
		}
	}
	f(nil, "", false)
	f([]servingNode{{"a", 0}}, "a", true)
	f([]servingNode{{"a", 3}, {"b", 1}, {"c", 2}}, "b", true)
	f([]servingNode{{"c", 1}, {"b", 1}, {"a", 2}}, "b", true) // tie by name
	f([]servingNode{{"z", 0}, {"y", 0}}, "y", true)
}

func TestEvictionVictims(t *testing.T) {
	f := func(name string, res []resident, need, free int, strategy string, incoming int, want []string, wantOK bool) {
		t.Helper()
		got, ok := evictionVictims(res, need, free, strategy, incoming)
		if ok != wantOK || !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Fatalf("%s: got %v, %v; want %v, %v", name, got, ok, want, wantOK)
		}
	}
	res := []resident{
		{ID: "a", MemMB: 1000, Priority: 100, LastUsed: at(30)},
		{ID: "b", MemMB: 2000, Priority: 50, LastUsed: at(20)},
		{ID: "c", MemMB: 1000, Priority: 200, LastUsed: at(10)},
	}
	f("fits already", res, 500, 600, strategyLRU, 100, nil, true)
	f("lru oldest first", res, 1500, 1000, strategyLRU, 100, []string{"c"}, true)
	f("lru takes as many as needed", res, 3500, 1000, strategyLRU, 100, []string{"c", "b"}, true)
	f("lru not enough", res, 6000, 1000, strategyLRU, 100, nil, false)
	f("priority lowest first", res, 1500, 1000, strategyPriority, 100, []string{"b"}, true)
	f("priority never displaces higher", res, 4500, 0, strategyPriority, 100, nil, false)
	f("priority equal is fair game, then lru", res, 3000, 0, strategyPriority, 100, []string{"b", "a"}, true)
	f("priority incoming high evicts all", res, 4000, 0, strategyPriority, 300, []string{"b", "a", "c"}, true)
	pinned := []resident{
		{ID: "p", MemMB: 5000, Pinned: true, LastUsed: at(0)},
		{ID: "busy", MemMB: 5000, InFlight: 1, LastUsed: at(1)},
		{ID: "x", MemMB: 1000, LastUsed: at(5)},
	}
	f("pinned and busy stay", pinned, 1500, 1000, strategyLRU, 100, []string{"x"}, true)
	f("pinned and busy stay, not enough", pinned, 3000, 1000, strategyLRU, 100, nil, false)
	tie := []resident{{ID: "y", MemMB: 100, LastUsed: at(1)}, {ID: "x", MemMB: 100, LastUsed: at(1)}}
	f("ties by id", tie, 100, 0, strategyLRU, 100, []string{"x"}, true)
}

func TestPlaceCandidates(t *testing.T) {
	f := func(name string, m placeModel, nodes []placeNode, want []placement) {
		t.Helper()
		got := placeCandidates(m, nodes, strategyLRU)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", name, diff)
		}
	}
	old := []resident{{ID: "old", MemMB: 3000, LastUsed: at(1)}}
	nodes := []placeNode{
		{Name: "small", FreeMB: 1000, Devices: 1},
		{Name: "roomy", FreeMB: 8000, Devices: 1},
		{Name: "mid", FreeMB: 5000, Devices: 2},
		{Name: "evict", FreeMB: 2000, Devices: 1, Resident: old},
	}
	f("fit by most free, then after evicting, then the rest", placeModel{NeedMB: 4000}, nodes, []placement{
		{Node: "roomy", Rank: 1}, {Node: "mid", Rank: 1}, {Node: "evict", Rank: 2, Evict: []string{"old"}}, {Node: "small", Rank: 3},
	})
	pinned := append([]placeNode{{Name: "pin", Pinned: true, FreeMB: 100, Devices: 1}}, nodes...)
	f("pinned first even when it does not fit", placeModel{NeedMB: 4000}, pinned[:2], []placement{
		{Node: "pin", Rank: 0}, {Node: "small", Rank: 3},
	})
	f("min_devices filters", placeModel{NeedMB: 100, MinDevices: 2}, nodes, []placement{{Node: "mid", Rank: 1}})
	f("unknown need fits anywhere; ties by name", placeModel{}, []placeNode{{Name: "b", FreeMB: 10}, {Name: "a", FreeMB: 10}}, []placement{
		{Node: "a", Rank: 1}, {Node: "b", Rank: 1},
	})
	f("nothing fits: most free memory first", placeModel{NeedMB: 99999}, nodes[:3], []placement{
		{Node: "roomy", Rank: 3}, {Node: "mid", Rank: 3}, {Node: "small", Rank: 3},
	})
	f("no nodes", placeModel{NeedMB: 1}, nil, nil)
}

func TestIdleVictims(t *testing.T) {
	now := at(100)
	ms := []idleModel{
		{ID: "stale", TTL: 30 * time.Second, LastUsed: at(10)},
		{ID: "fresh", TTL: 30 * time.Second, LastUsed: at(90)},
		{ID: "no-ttl", LastUsed: at(0)},
		{ID: "pinned", TTL: time.Second, Pinned: true, LastUsed: at(0)},
		{ID: "busy", TTL: time.Second, InFlight: 2, LastUsed: at(0)},
		{ID: "edge", TTL: 10 * time.Second, LastUsed: at(90)},
	}
	if got, want := idleVictims(now, ms), []string{"edge", "stale"}; !cmp.Equal(got, want) {
		t.Fatalf("idleVictims = %v, want %v", got, want)
	}
}

func TestDefragPlan(t *testing.T) {
	res := []resident{{ID: "b"}, {ID: "p", Pinned: true}, {ID: "a"}}
	f := func(name string, cycles, threshold int, idle bool, wantUnload []string, wantDue, wantNow bool) {
		t.Helper()
		u, due, now := defragPlan(cycles, threshold, idle, res)
		if !cmp.Equal(u, wantUnload, cmpopts.EquateEmpty()) || due != wantDue || now != wantNow {
			t.Fatalf("%s: got %v %v %v", name, u, due, now)
		}
	}
	f("disabled", 100, 0, true, nil, false, false)
	f("below threshold", 2, 3, true, nil, false, false)
	f("due but busy", 3, 3, false, nil, true, false)
	f("due and idle: unpinned go", 4, 3, true, []string{"a", "b"}, true, true)
}
