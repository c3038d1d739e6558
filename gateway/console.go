package gateway

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// The web console: one embedded page (GET /ui/) and its admin API under
// /ui/api/, which only admin_keys open. The page uses relative URLs only,
// so it works behind a reverse proxy under any path prefix; it never sees
// a key's secret, only names.

//go:embed ui/index.html
var consolePage []byte

func (g *Gateway) consoleRoutes(e *echo.Echo) {
	e.GET("/ui", func(c echo.Context) error {
		// Relative, so that a path prefix in front of the gateway stays.
		return c.Redirect(http.StatusMovedPermanently, "ui/")
	})
	e.GET("/ui/", func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'")
		return c.Blob(http.StatusOK, "text/html; charset=utf-8", consolePage)
	})
	api := e.Group("/ui/api", g.adminOnly)
	api.GET("/overview", g.handleOverview)
	api.GET("/usage", g.handleUsage)
	api.POST("/load", g.handleAdminAction("load"))
	api.POST("/unload", g.handleAdminAction("unload"))
	api.POST("/pin", g.handleAdminAction("pin"))
}

// adminOnly lets through requests that carry an admin key as
// Authorization: Bearer.
func (g *Gateway) adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		l := g.live()
		if len(l.admin) == 0 {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "the console is off: set admin_keys in [gateway]"})
		}
		a := c.Request().Header.Get("Authorization")
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") && l.admin[sha(strings.TrimSpace(a[7:]))] {
			return next(c)
		}
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "an admin key is required"})
	}
}

// Overview is what the console polls: the fleet, each model's recent
// numbers, each key's use against its limits, and the recent errors.
type Overview struct {
	Now    time.Time    `json:"now"`
	Fleet  FleetReport  `json:"fleet"`
	Models []ModelStats `json:"models"`
	Keys   []KeyView    `json:"keys"`
	Errors []ErrorEntry `json:"errors"`
}

func (g *Gateway) overview() Overview {
	now := g.now()
	o := Overview{Now: now.UTC(), Fleet: g.fleetReport(), Errors: g.rings.errors(), Keys: []KeyView{}, Models: []ModelStats{}}
	stats := g.rings.modelStats(now)
	where := map[string][]string{}
	for _, n := range o.Fleet.Nodes {
		for _, m := range n.Models {
			if m.Status == statusLoaded && n.Healthy {
				where[m.ID] = append(where[m.ID], n.Name)
			}
			if stats[m.ID] == nil {
				stats[m.ID] = &ModelStats{ID: m.ID}
			}
		}
	}
	for id, s := range stats {
		s.Nodes = where[id]
		if s.Nodes == nil {
			s.Nodes = []string{}
		}
		o.Models = append(o.Models, *s)
	}
	sort.Slice(o.Models, func(i, j int) bool { return o.Models[i].ID < o.Models[j].ID })
	for _, k := range g.live().list {
		o.Keys = append(o.Keys, k.view(now, g.spentFn))
	}
	return o
}

func (g *Gateway) handleOverview(c echo.Context) error {
	return c.JSON(http.StatusOK, g.overview())
}

// handleUsage serves one key's hourly usage: ?key=NAME&hours=N (default
// 48, at most 24*62).
func (g *Gateway) handleUsage(c echo.Context) error {
	name := c.QueryParam("key")
	hours := 48
	if h, err := strconv.Atoi(c.QueryParam("hours")); err == nil && h > 0 && h <= 24*62 {
		hours = h
	}
	now := g.now()
	return c.JSON(http.StatusOK, g.store.series(name, now.Add(-time.Duration(hours-1)*time.Hour), now))
}

type adminAction struct {
	Node   string `json:"node"`
	Model  string `json:"model"`
	Pinned *bool  `json:"pinned"`
}

// handleAdminAction loads, unloads or pins a model on a node.
func (g *Gateway) handleAdminAction(what string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var a adminAction
		if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<16)).Decode(&a); err != nil || a.Node == "" || a.Model == "" {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "send {\"node\":…,\"model\":…}"})
		}
		g.fleet.mu.RLock()
		n := g.fleet.byName[a.Node]
		g.fleet.mu.RUnlock()
		if n == nil {
			return c.JSON(http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no node %q", a.Node)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Gateway.LoadTimeout.D())
		defer cancel()
		var err error
		switch what {
		case "load":
			err = g.loadOn(ctx, n, a.Model, false)
		case "unload":
			err = g.unloadOn(ctx, n, a.Model, "admin")
		case "pin":
			on := a.Pinned == nil || *a.Pinned
			if err = g.store.setPin(a.Node, a.Model, on); err == nil && on {
				g.fleet.mu.RLock()
				m, listed := n.models[a.Model]
				g.fleet.mu.RUnlock()
				if listed && m.Status != statusLoaded {
					g.keepPinned(n, a.Model)
				}
			}
		}
		g.log.Info().Str("action", what).Str("node", a.Node).Str("model", a.Model).Err(err).Msg("console action")
		if err != nil {
			return c.JSON(http.StatusBadGateway, map[string]string{"error": redactPaths(err.Error())})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}
