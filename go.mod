module github.com/socketcluster-go/socketcluster

go 1.26
