package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

// defaultNamespace is where kubectl would apply objects that name none (the base has none;
// overlays set one).
const defaultNamespace = "default"

// manifests is a rendered kustomization (kustomize build output) held in a fake API server, so
// KEDA's own resolver code reads the ConfigMaps and Deployments exactly as it would in a cluster.
type manifests struct {
	client        client.Client
	scaledObjects []*kedav1alpha1.ScaledObject
	// assumedSecrets are Secrets the workloads require but the manifests do not ship (credentials
	// are created outside git): they are added empty, as KEDA would fail on a missing one.
	assumedSecrets []string
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := kedav1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}

// loadManifests decodes every document of a multi-document YAML stream. Kinds neither
// Kubernetes nor KEDA define are an error: the stream is expected to be kustomize output of
// infra/k8s, where every kind is known.
func loadManifests(r io.Reader, source string) (*manifests, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var objects []client.Object
	m := &manifests{}
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, doc, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("---")) {
			continue
		}
		obj, gvk, err := decoder.Decode(raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, doc, err)
		}
		cobj, ok := obj.(client.Object)
		if !ok {
			return nil, fmt.Errorf("%s: document %d: %s is not an API object", source, doc, gvk)
		}
		if cobj.GetNamespace() == "" && gvk.Kind != "Namespace" {
			cobj.SetNamespace(defaultNamespace)
		}
		if so, isSO := obj.(*kedav1alpha1.ScaledObject); isSO {
			m.scaledObjects = append(m.scaledObjects, so)
		}
		objects = append(objects, cobj)
	}
	if len(m.scaledObjects) == 0 {
		return nil, fmt.Errorf("%s: no ScaledObject in the manifests", source)
	}
	objects = append(objects, m.assumeMissingSecrets(objects)...)
	m.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	return m, nil
}

// assumeMissingSecrets returns an empty Secret for each non-optional Secret that a Deployment's
// containers read (envFrom or env) and the manifests do not define, and records its name.
func (m *manifests) assumeMissingSecrets(objects []client.Object) []client.Object {
	have := map[string]bool{}
	for _, o := range objects {
		if _, ok := o.(*corev1.Secret); ok {
			have[o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	var added []client.Object
	need := func(namespace, name string, optional *bool) {
		key := namespace + "/" + name
		if (optional != nil && *optional) || have[key] {
			return
		}
		have[key] = true
		m.assumedSecrets = append(m.assumedSecrets, key)
		added = append(added, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}})
	}
	for _, o := range objects {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, from := range c.EnvFrom {
				if from.SecretRef != nil {
					need(d.Namespace, from.SecretRef.Name, from.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					need(d.Namespace, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Optional)
				}
			}
		}
	}
	return added
}
