// keda-check builds KEDA's own Temporal scaler (github.com/kedacore/keda/v2/pkg/scalers, the
// version pinned in go.mod) from the ScaledObjects of rendered manifests (kustomize build of an
// infra/k8s overlay), asks it for the live backlog metric and activity, and prints, per
// ScaledObject, what KEDA would read and the replica count the HPA would ask for (replicas.go).
//
// Usage: keda-check -manifests rendered.yaml [-env NAME=VALUE]... [-timeout 20s]
//
// The trigger metadata is used exactly as rendered, and the scale target's environment is
// resolved by KEDA's resolver from the rendered Deployment and ConfigMaps; -env then replaces
// resolved variables, e.g. TEMPORAL_ADDRESS (the manifests name an in-cluster service that is
// not reachable from outside the cluster). Secrets the workloads require but git does not hold are
// assumed to exist, empty, and listed in the output. Exit 0 with JSON on stdout; exit 1 with the reason on
// stderr when the manifests are unusable or a scaler cannot be built or read.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	appsv1 "k8s.io/api/apps/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/authentication"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	"github.com/kedacore/keda/v2/pkg/scaling/resolver"
)

const kedaModule = "github.com/kedacore/keda/v2"

// reading is one trigger's answer from KEDA's scaler.
type reading struct {
	Trigger            int               `json:"trigger"`
	Type               string            `json:"type"`
	Metadata           map[string]string `json:"metadata"`
	Endpoint           string            `json:"endpoint"`
	Namespace          string            `json:"namespace"`
	TaskQueue          string            `json:"taskQueue"`
	MetricName         string            `json:"metricName"`
	TargetType         string            `json:"targetType"`
	TargetAverageValue float64           `json:"targetAverageValue"`
	Metric             float64           `json:"metric"`
	IsActive           bool              `json:"isActive"`
}

type result struct {
	ScaledObject    string    `json:"scaledObject"`
	Namespace       string    `json:"namespace"`
	Target          string    `json:"target"`
	MinReplicaCount int32     `json:"minReplicaCount"`
	MaxReplicaCount int32     `json:"maxReplicaCount"`
	Triggers        []reading `json:"triggers"`
	Replicas        int32     `json:"replicas"`
}

type envOverrides map[string]string

func (e envOverrides) String() string { return fmt.Sprint(map[string]string(e)) }
func (e envOverrides) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("-env %q: expected NAME=VALUE", s)
	}
	e[name] = value
	return nil
}

func main() {
	overrides := envOverrides{}
	path := flag.String("manifests", "", "rendered manifests (kustomize build output); - for stdin")
	timeout := flag.Duration("timeout", 20*time.Second, "limit for building and reading all scalers")
	verbose := flag.Bool("v", false, "KEDA's own logs on stderr")
	flag.Var(overrides, "env", "NAME=VALUE replacing a resolved environment variable (repeatable)")
	flag.Parse()
	logger := logr.Discard()
	if *verbose {
		logger = funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
	}
	logf.SetLogger(logger) // KEDA's scalers and resolver log through controller-runtime's logger
	if *path == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: keda-check -manifests rendered.yaml [-env NAME=VALUE]... [-timeout 20s] [-v]")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out, err := run(ctx, *path, overrides, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "keda-check: %v\n", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func run(ctx context.Context, path string, overrides envOverrides, logger logr.Logger) (any, error) {
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	m, err := loadManifests(in, path)
	if err != nil {
		return nil, err
	}
	sort.Slice(m.scaledObjects, func(i, j int) bool { return m.scaledObjects[i].Name < m.scaledObjects[j].Name })
	results := make([]result, 0, len(m.scaledObjects))
	for _, so := range m.scaledObjects {
		r, err := check(ctx, m, so, overrides, logger)
		if err != nil {
			return nil, fmt.Errorf("ScaledObject %s/%s: %w", so.Namespace, so.Name, err)
		}
		results = append(results, r)
	}
	return map[string]any{"keda": kedaVersion(), "assumedSecrets": m.assumedSecrets, "scaledObjects": results}, nil
}

// check builds each trigger's scaler as KEDA's scale handler does (pkg/scaling/scalers_builder.go:
// resolve the target's container env, then the TriggerAuthentication, then the scaler) and reads it.
func check(ctx context.Context, m *manifests, so *kedav1alpha1.ScaledObject, overrides envOverrides, logger logr.Logger) (result, error) {
	// KEDA's controller fills in the target's kind before the scale handler runs; a ScaledObject
	// without apiVersion/kind in scaleTargetRef targets an apps/v1 Deployment.
	gvk := appsv1.SchemeGroupVersion.WithKind("Deployment")
	if so.Spec.ScaleTargetRef.APIVersion != "" || (so.Spec.ScaleTargetRef.Kind != "" && so.Spec.ScaleTargetRef.Kind != "Deployment") {
		return result{}, fmt.Errorf("scaleTargetRef %s %s: only apps/v1 Deployments are checked here",
			so.Spec.ScaleTargetRef.APIVersion, so.Spec.ScaleTargetRef.Kind)
	}
	so.Status.ScaleTargetGVKR = &kedav1alpha1.GroupVersionKindResource{
		Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Resource: "deployments",
	}
	podTemplate, containerName, err := resolver.ResolveScaleTargetPodSpec(ctx, m.client, so)
	if err != nil {
		return result{}, fmt.Errorf("scale target %s: %w", so.Spec.ScaleTargetRef.Name, err)
	}
	res := result{
		ScaledObject: so.Name, Namespace: so.Namespace, Target: so.Spec.ScaleTargetRef.Name,
		MaxReplicaCount: so.GetHPAMaxReplicas(),
	}
	if so.Spec.MinReplicaCount != nil { // else KEDA's default, 0
		res.MinReplicaCount = *so.Spec.MinReplicaCount
	}
	withTriggers, err := kedav1alpha1.AsDuckWithTriggers(so)
	if err != nil {
		return result{}, err
	}
	for i, trigger := range so.Spec.Triggers {
		env := map[string]string{}
		if podTemplate != nil {
			env, err = resolver.ResolveContainerEnv(ctx, m.client, logger, &podTemplate.Spec, containerName, so.Namespace, nil)
			if err != nil {
				return result{}, fmt.Errorf("trigger %d: resolving the target's environment: %w", i, err)
			}
		}
		for name, value := range overrides {
			env[name] = value
		}
		config := &scalersconfig.ScalerConfig{
			ScalableObjectName:      so.Name,
			ScalableObjectNamespace: so.Namespace,
			ScalableObjectType:      withTriggers.Kind,
			TriggerName:             trigger.Name,
			TriggerMetadata:         trigger.Metadata,
			TriggerType:             trigger.Type,
			ResolvedEnv:             env,
			AuthParams:              map[string]string{},
			GlobalHTTPTimeout:       5 * time.Second,
			TriggerIndex:            i,
			MetricType:              trigger.MetricType,
			ScaledObject:            withTriggers,
			TriggerUniqueKey:        fmt.Sprintf("%s-%s-%s-%d", withTriggers.Kind, so.Namespace, so.Name, i),
		}
		authParams, podIdentity, err := resolver.ResolveAuthRefAndPodIdentity(ctx, m.client, logger, trigger.AuthenticationRef,
			podTemplate, so.Namespace, &authentication.AuthClientSet{})
		if err != nil {
			return result{}, fmt.Errorf("trigger %d: authentication: %w", i, err)
		}
		config.AuthParams, config.PodIdentity = authParams, podIdentity
		r, err := read(ctx, config)
		if err != nil {
			return result{}, fmt.Errorf("trigger %d (%s): %w", i, trigger.Type, err)
		}
		res.Triggers = append(res.Triggers, r)
	}
	res.Replicas, err = desiredReplicas(so, res.Triggers)
	return res, err
}

// read builds the trigger's KEDA scaler and asks it once, as KEDA's polling loop and the metrics
// server do (GetMetricSpecForScaling for the HPA's target, GetMetricsAndActivity for the value).
func read(ctx context.Context, config *scalersconfig.ScalerConfig) (reading, error) {
	if config.TriggerType != "temporal" {
		return reading{}, fmt.Errorf("only KEDA's temporal scaler is built into keda-check")
	}
	scaler, err := scalers.NewTemporalScaler(ctx, config)
	if err != nil {
		return reading{}, err
	}
	defer scaler.Close(ctx)
	specs := scaler.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		return reading{}, fmt.Errorf("expected one external metric spec, got %d", len(specs))
	}
	spec := specs[0].External
	values, active, err := scaler.GetMetricsAndActivity(ctx, spec.Metric.Name)
	if err != nil {
		return reading{}, err
	}
	if len(values) != 1 {
		return reading{}, fmt.Errorf("expected one metric value, got %d", len(values))
	}
	r := reading{
		Trigger: config.TriggerIndex, Type: config.TriggerType, Metadata: config.TriggerMetadata,
		Endpoint: resolvedValue(config, "endpoint"), Namespace: resolvedValue(config, "namespace"),
		TaskQueue: resolvedValue(config, "taskQueue"), MetricName: spec.Metric.Name,
		TargetType: string(spec.Target.Type), Metric: values[0].Value.AsApproximateFloat64(), IsActive: active,
	}
	if spec.Target.AverageValue != nil {
		r.TargetAverageValue = spec.Target.AverageValue.AsApproximateFloat64()
	}
	return r, nil
}

// resolvedValue is what the scaler used for a `name` / `nameFromEnv` field, for the report only.
func resolvedValue(config *scalersconfig.ScalerConfig, name string) string {
	if v, ok := config.TriggerMetadata[name]; ok {
		return v
	}
	if envName, ok := config.TriggerMetadata[name+"FromEnv"]; ok {
		return config.ResolvedEnv[envName]
	}
	return ""
}

func kedaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == kedaModule {
				return dep.Version
			}
		}
	}
	return "unknown"
}
