// kstatus reads Kubernetes objects as JSON on stdin and prints what kstatus
// (sigs.k8s.io/cli-utils/pkg/kstatus/status) makes of each: the status Flux's
// `wait: true`, kpt and Config Sync report. One object in, one result out; a
// JSON array in, an array of results out. Numbers are decoded as Kubernetes
// decodes them (integers as int64), which kstatus's accessors need.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func compute(obj map[string]interface{}) (result, error) {
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return result{}, err
	}
	return result{Status: string(res.Status), Message: res.Message}, nil
}

func run() error {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	var many []map[string]interface{}
	if utiljson.Unmarshal(data, &many) == nil {
		results := make([]result, 0, len(many))
		for _, obj := range many {
			res, err := compute(obj)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return json.NewEncoder(os.Stdout).Encode(results)
	}
	var one map[string]interface{}
	if err := utiljson.Unmarshal(data, &one); err != nil {
		return fmt.Errorf("stdin is neither a JSON object nor an array of objects: %w", err)
	}
	res, err := compute(one)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
