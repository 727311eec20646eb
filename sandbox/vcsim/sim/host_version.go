package sim

import (
	"fmt"
	"strconv"
	"strings"
)

// esxiVersion is an ESXi release as major.minor.update ("7.0.3").
type esxiVersion struct{ major, minor, update int }

func parseVersion(s string) (esxiVersion, error) {
	if s == "" {
		s = defaultESXiVersion
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return esxiVersion{}, fmt.Errorf("bad ESXi version %q (want e.g. 7.0.3)", s)
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return esxiVersion{}, fmt.Errorf("bad ESXi version %q (want e.g. 7.0.3)", s)
		}
		v[i] = n
	}
	return esxiVersion{v[0], v[1], v[2]}, nil
}

const defaultESXiVersion = "8.0.2"

func (v esxiVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.update) }

// atLeast compares releases, e.g. v.atLeast(7, 0, 2) for hardwareLabel support.
func (v esxiVersion) atLeast(major, minor, update int) bool {
	if v.major != major {
		return v.major > major
	}
	if v.minor != minor {
		return v.minor > minor
	}
	return v.update >= update
}

// apiVersion is AboutInfo.apiVersion as real hosts report it: 6.x updates map to "6.7.3"
// style (6.7 GA is "6.7"), 7.0 and later append ".0" ("7.0.3.0", "8.0.2.0").
func (v esxiVersion) apiVersion() string {
	if v.major >= 7 {
		return v.String() + ".0"
	}
	if v.update == 0 {
		return fmt.Sprintf("%d.%d", v.major, v.minor)
	}
	return v.String()
}

// knownBuilds are GA build numbers of the releases the sandbox uses, so product.fullName looks real.
var knownBuilds = map[string]string{
	"6.5.0": "4564106",
	"6.7.0": "8169922",
	"6.7.3": "14320388",
	"7.0.0": "15843807",
	"7.0.2": "17630552",
	"7.0.3": "19193900",
	"8.0.0": "20513097",
	"8.0.1": "21495797",
	"8.0.2": "22380479",
	"8.0.3": "24022510",
}

func (v esxiVersion) build() string {
	if b, ok := knownBuilds[v.String()]; ok {
		return b
	}
	return "1000000"
}
