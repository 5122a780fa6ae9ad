package main

import (
	"fmt"
	"math"

	v2 "k8s.io/api/autoscaling/v2"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

// desiredReplicas is the replica count KEDA + the HPA settle on for these readings, computed as
// they do (KEDA creates the HPA; the HPA computes the count; KEDA alone scales to and from zero):
//   - every trigger inactive and minReplicaCount 0: KEDA scales the target to 0;
//   - otherwise, per AverageValue external metric, the HPA asks for ceil(value / target)
//     (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details),
//     takes the largest over the metrics and clamps it to [max(minReplicaCount, 1), maxReplicaCount]
//     (KEDA's GetHPAMinReplicas / GetHPAMaxReplicas).
//
// It is the steady-state target for a constant reading. Left out on purpose, as they depend on
// the current replica count or on time: the HPA's 10% tolerance around the current count, the
// scale-up/down behavior policies and stabilization windows, and KEDA's cooldownPeriod.
func desiredReplicas(so *kedav1alpha1.ScaledObject, readings []reading) (int32, error) {
	anyActive := false
	for _, r := range readings {
		anyActive = anyActive || r.IsActive
	}
	if !anyActive && (so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount == 0) {
		return 0, nil
	}
	var hpa int64
	for _, r := range readings {
		if r.TargetType != string(v2.AverageValueMetricType) {
			return 0, fmt.Errorf("trigger %d: metric target type %s: only AverageValue (KEDA's default) is computed here",
				r.Trigger, r.TargetType)
		}
		if r.TargetAverageValue <= 0 {
			return 0, fmt.Errorf("trigger %d: target average value %v must be > 0", r.Trigger, r.TargetAverageValue)
		}
		hpa = max(hpa, int64(math.Ceil(r.Metric/r.TargetAverageValue)))
	}
	lo, hi := int64(*so.GetHPAMinReplicas()), int64(so.GetHPAMaxReplicas())
	return int32(min(max(hpa, lo), hi)), nil
}
